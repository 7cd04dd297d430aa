"""Destinations on screen (supervisors and admins): the list, and the create and edit forms.

The address and the contact are shown on the edit form only, and each showing is journaled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.db.models.catalog import DESTINATION_KINDS
from app.db.queries.destinations import destination_page
from app.domain.access import SUPERVISORS
from app.routes.common import client_ip, principal_of
from app.routes.scan_flows.flows import Form, new_key, one
from app.services.destinations import (
    DestinationData,
    DestinationSecrets,
    quota,
    reveal_destination,
    save_destination,
)
from app.services.errors import Invalid, Refused
from app.services.users import Actor
from app.web.auth import access
from app.web.context import AppContext, Ctx
from app.web.i18n import gettext as _
from app.web.templating import page

PAGE_SIZE = 25


@dataclass(frozen=True)
class DestinationForm:
    """The form as typed (strings), shown back as it was after a refusal."""

    code: str = ""
    name: str = ""
    kind: str = "store"
    tier: str = "2"
    min_units: str = ""
    max_units: str = ""
    quota_percent: str = ""
    address: str = ""
    contact: str = ""
    is_active: bool = True
    key: str = ""

    @classmethod
    def read(cls, data: dict[str, Any], code: str | None = None) -> DestinationForm:
        def text(name: str, limit: int = 32) -> str:
            return one(data, name).strip()[:limit]

        return cls(
            code or text("code"),
            text("name", 200),
            text("kind", 16),
            text("tier", 4),
            text("min_units", 12),
            text("max_units", 12),
            text("quota_percent", 8),
            one(data, "address")[:1000],
            one(data, "contact")[:400],
            one(data, "is_active") == "1",
            text("idempotency_key", 128) or new_key(),
        )

    @classmethod
    def of(cls, found: DestinationSecrets) -> DestinationForm:
        def shown(value: int | None) -> str:
            return "" if value is None else str(value)

        percent = "" if found.quota_percent is None else f"{found.quota_percent.normalize():f}"
        return cls(
            found.code,
            found.name,
            found.kind,
            str(found.tier),
            shown(found.min_units),
            shown(found.max_units),
            percent,
            found.address or "",
            found.contact or "",
            found.is_active,
            new_key(),
        )

    def data(self) -> DestinationData:
        """What the form asks for; Invalid names the field to correct."""
        return DestinationData(
            self.code,
            self.name,
            self.kind,
            _whole(self.tier, "tier") or 0,
            _whole(self.min_units, "min_units"),
            _whole(self.max_units, "max_units"),
            quota(self.quota_percent),
            self.address,
            self.contact,
            self.is_active,
        )


def _whole(text: str, field: str) -> int | None:
    if not text:
        return None
    if not text.isdecimal():
        raise Invalid("{value} is not a whole number.", field=field, value=text)
    return int(text)


class DestinationsController(Controller):
    path = "/destinations"
    opt = access(SUPERVISORS)

    @get("/", name="destinations:list")
    async def list_destinations(
        self, request: Request[Any, Any, Any], ctx: Ctx, q: FromQuery[str] = "", page_no: FromQuery[int] = 1
    ) -> Template:
        page_no = max(page_no, 1)
        async with ctx.db.reads() as session:
            rows, total = await destination_page(session, q, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
        pages = max(1, -(-total // PAGE_SIZE))
        return page(
            request,
            "destinations/index.html",
            "results",
            rows=rows,
            total=total,
            q=q,
            page_no=page_no,
            pages=pages,
        )

    @get("/new", name="destinations:new")
    async def new_destination(self, request: Request[Any, Any, Any]) -> Template:
        return _form(request, DestinationForm(key=new_key()), editing=False)

    @post("/", name="destinations:create", status_code=303)
    async def create(self, request: Request[Any, Any, Any], ctx: Ctx, data: Form) -> Response[Any]:
        return await _save(request, ctx, DestinationForm.read(data), editing=False)

    @get("/{code:str}", name="destinations:edit")
    async def edit(self, request: Request[Any, Any, Any], ctx: Ctx, code: FromPath[str]) -> Template:
        """The edit form, with the address and contact: the access journal records this view."""
        actor = Actor.of(principal_of(request), client_ip(request))
        found = await reveal_destination(ctx.db, code, actor=actor)
        return _form(request, DestinationForm.of(found), editing=True)

    @post("/{code:str}", name="destinations:update", status_code=303)
    async def update(
        self, request: Request[Any, Any, Any], ctx: Ctx, code: FromPath[str], data: Form
    ) -> Response[Any]:
        return await _save(request, ctx, DestinationForm.read(data, code.upper()), editing=True)


async def _save(
    request: Request[Any, Any, Any], ctx: AppContext, form: DestinationForm, *, editing: bool
) -> Response[Any]:
    """Save, then back to the list saying so; a refusal shows the form again with a fresh key."""
    try:
        _status, answer = await save_destination(
            ctx.db,
            form.data(),
            actor=Actor.of(principal_of(request), client_ip(request)),
            idempotency_key=form.key,
            now=ctx.now(),
        )
    except Refused as refusal:
        error = {"field": getattr(refusal, "field", None), "message": _(refusal.message, **refusal.facts)}
        retry = replace(form, key=new_key())
        return _form(request, retry, editing=editing, error=error, status_code=refusal.status)
    target = request.app.route_reverse("destinations:list")
    return Redirect(f"{target}?saved={answer['code']}", status_code=303)


def _form(
    request: Request[Any, Any, Any],
    form: DestinationForm,
    *,
    editing: bool,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Template:
    return page(
        request,
        "destinations/form.html",
        status_code=status_code,
        form=form,
        editing=editing,
        kinds=DESTINATION_KINDS,
        error=error,
    )
