"""Small helpers every controller uses."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from litestar import Request
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.queries.users import SiteRow, all_sites, site_by_code
from app.domain.access import Principal
from app.services.errors import NotFound as RefusedNotFound
from app.web.context import AppContext


class _Site(Protocol):
    @property
    def id(self) -> int: ...


AnySite = TypeVar("AnySite", bound=_Site)


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in person; the access guard has already refused anonymous requests."""
    user = request.scope.get("user")
    assert isinstance(user, Principal)
    return user


def safe_next(target: str | None) -> str:
    """Only same-site paths may follow a login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def site_for(ctx: AppContext, principal: Principal, code: str) -> SiteRow:
    """The site named in the URL, if this person may work on it (404 if unknown, 403 if not theirs)."""
    async with ctx.db.reads() as session:
        return await site_in(session, principal, code)


async def site_in(session: AsyncSession, principal: Principal, code: str) -> SiteRow:
    """`site_for` in a session the caller reads more through (one connection for both)."""
    return own_site(principal, await site_by_code(session, code.upper()))


def own_site(principal: Principal, site: AnySite | None) -> AnySite:
    """`site` (as any read found it), if it exists (404) and this person may work on it (403)."""
    if site is None:
        raise NotFoundException()
    if not principal.may_work_on(site.id):
        raise PermissionDeniedException("This site is not one of yours.")
    return site


async def to_first_site(request: Request[Any, Any, Any], ctx: AppContext, route: str) -> Redirect:
    """Where a nav link lands: `route` at the person's first site."""
    sites = await sites_of(ctx, principal_of(request))
    if not sites:
        raise RefusedNotFound("You are not assigned to any site yet. Ask an administrator.")
    return Redirect(request.app.route_reverse(route, site=sites[0].code), status_code=303)


async def sites_of(ctx: AppContext, principal: Principal) -> list[SiteRow]:
    """The sites this person works on, by code (every site for admins)."""
    async with ctx.db.reads() as session:
        return [s for s in await all_sites(session) if principal.may_work_on(s.id)]
