"""Admin: the people who use the tool."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from app.db.queries.users import all_sites, user_by_name, users_page
from app.domain.access import ADMINS, Role
from app.routes.common import client_ip, principal_of
from app.services import users as user_service
from app.services.errors import Invalid
from app.services.passwords import MIN_LENGTH
from app.services.users import Actor, UserDraft
from app.web.auth import access
from app.web.context import Ctx
from app.web.i18n import gettext as _
from app.web.templating import page

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
PAGE_SIZE = 25


def _draft(data: dict[str, Any], username: str | None = None) -> UserDraft:
    sites = data.get("sites", [])
    sites = [sites] if isinstance(sites, str) else list(sites)
    return UserDraft(
        username=username or str(data.get("username", "")),
        full_name=str(data.get("full_name", "")),
        role=str(data.get("role", "")),
        site_codes=tuple(sites),
        locale=str(data.get("locale")) if data.get("locale") in {"fr", "en"} else None,
    )


def _done(request: Request[Any, Any, Any], target: str) -> Response[Any]:
    """After a change: back to a page, the htmx way when htmx asked."""
    if request.headers.get("hx-request"):
        return ClientRedirect(target)
    return Redirect(target, status_code=303)


class AdminUsersController(Controller):
    path = "/admin/users"
    opt = access(ADMINS)

    @get("/", name="users:list")
    async def list_users(
        self, request: Request[Any, Any, Any], ctx: Ctx, q: FromQuery[str] = "", page_no: FromQuery[int] = 1
    ) -> Template:
        page_no = max(page_no, 1)
        async with ctx.db.reads() as session:
            rows, total = await users_page(session, q, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
        return page(
            request,
            "admin/users/index.html",
            "results",
            users=rows,
            total=total,
            q=q,
            page_no=page_no,
            pages=max(1, -(-total // PAGE_SIZE)),
            now=ctx.now(),
        )

    @get("/new", name="users:new")
    async def new_user(self, ctx: Ctx) -> Template:
        return await self._form(ctx, None, {}, None)

    @post("/", name="users:create", status_code=303)
    async def create_user(self, request: Request[Any, Any, Any], ctx: Ctx, data: Form) -> Response[Any]:
        draft = _draft(data)
        try:
            await user_service.create_user(
                ctx.db,
                draft,
                str(data.get("password", "")),
                actor=Actor.of(principal_of(request), client_ip(request)),
                now=ctx.now(),
            )
        except Invalid as invalid:
            return await self._form(ctx, None, data, invalid, status_code=422)
        return _done(
            request, request.app.route_reverse("users:detail", username=draft.username.strip().lower())
        )

    @get("/{username:str}", name="users:detail")
    async def detail(self, ctx: Ctx, username: FromPath[str]) -> Template:
        return await self._form(ctx, username, None, None)

    @post("/{username:str}", name="users:update", status_code=303)
    async def update(
        self, request: Request[Any, Any, Any], ctx: Ctx, username: FromPath[str], data: Form
    ) -> Response[Any]:
        try:
            await user_service.update_user(
                ctx.db,
                username,
                _draft(data, username),
                actor=Actor.of(principal_of(request), client_ip(request)),
                now=ctx.now(),
            )
        except Invalid as invalid:
            return await self._form(ctx, username, data, invalid, status_code=422)
        return _done(request, request.app.route_reverse("users:detail", username=username) + "?saved=1")

    @post("/{username:str}/password", name="users:password", status_code=303)
    async def reset_password(
        self, request: Request[Any, Any, Any], ctx: Ctx, username: FromPath[str], data: Form
    ) -> Response[Any]:
        try:
            await user_service.set_password(
                ctx.db,
                username,
                str(data.get("password", "")),
                actor=Actor.of(principal_of(request), client_ip(request)),
                now=ctx.now(),
            )
        except Invalid as invalid:
            return await self._form(ctx, username, None, invalid, status_code=422)
        return _done(request, request.app.route_reverse("users:detail", username=username) + "?password=1")

    @post("/{username:str}/active", name="users:active", status_code=303)
    async def set_active(
        self, request: Request[Any, Any, Any], ctx: Ctx, username: FromPath[str], data: Form
    ) -> Response[Any]:
        try:
            await user_service.set_active(
                ctx.db,
                username,
                data.get("active") == "1",
                actor=Actor.of(principal_of(request), client_ip(request)),
                now=ctx.now(),
            )
        except Invalid as invalid:
            return await self._form(ctx, username, None, invalid, status_code=422)
        return _done(request, request.app.route_reverse("users:detail", username=username))

    async def _form(
        self,
        ctx: Ctx,
        username: str | None,
        data: dict[str, Any] | None,
        invalid: Invalid | None,
        status_code: int = 200,
    ) -> Template:
        """The create/edit form, filled from the database or from what was just submitted."""
        async with ctx.db.reads() as session:
            user = await user_by_name(session, username) if username else None
            sites = await all_sites(session)
        if username and user is None:
            raise NotFoundException()
        if data is None and user is not None:
            data = {
                "username": user.username,
                "full_name": user.full_name,
                "role": user.role,
                "sites": list(user.site_codes),
                "locale": user.locale or "",
            }
        data = data or {"role": Role.OPERATOR.value, "sites": []}
        chosen = data.get("sites", [])
        error = {"field": invalid.field, "message": _(invalid.message, **invalid.facts)} if invalid else None
        return Template(
            "admin/users/form.html",
            status_code=status_code,
            context={
                "user": user,
                "form": data,
                "chosen_sites": [chosen] if isinstance(chosen, str) else chosen,
                "sites": sites,
                "roles": [r.value for r in Role],
                "error": error,
                "min_length": MIN_LENGTH,
                "now": ctx.now(),
            },
        )
