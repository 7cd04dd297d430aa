"""Supervisors import products, locations and opening stock from CSV or XLSX files."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from app.db.queries.imports import BatchView, batch_errors, batch_view, recent_batches
from app.domain.access import SUPERVISORS
from app.routes.common import client_ip, principal_of
from app.services.errors import Invalid
from app.services.import_files import MAX_FILE_BYTES
from app.services.import_rows import COLUMNS, ImportKind
from app.services.imports import Uploader, import_kind, start_import
from app.web.auth import access
from app.web.context import AppContext, Ctx
from app.web.i18n import current_locale
from app.web.i18n import gettext as _
from app.web.templating import page

Upload = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


class ImportsController(Controller):
    path = "/imports"
    opt = access(SUPERVISORS)

    @get("/", name="imports:index")
    async def index(self, request: Request[Any, Any, Any], ctx: Ctx) -> Template:
        return await _index(request, ctx)

    # The body cap leaves room for the multipart envelope, so an oversized file gets its own message.
    @post("/", name="imports:upload", status_code=303, request_max_body_size=MAX_FILE_BYTES + 1_000_000)
    async def upload(self, request: Request[Any, Any, Any], ctx: Ctx, data: Upload) -> Response[Any]:
        file, kind = data.get("file"), str(data.get("kind", ""))
        principal = principal_of(request)
        uploader = Uploader(principal.user_id, principal.username, client_ip(request), principal.site_scope)
        try:
            if not isinstance(file, UploadFile) or not file.filename:
                raise Invalid("Choose a CSV or XLSX file.", field="file")
            batch_id = await start_import(
                ctx.db, kind, file.filename, await file.read(), uploader=uploader, now=ctx.now()
            )
        except Invalid as invalid:
            return await _index(request, ctx, kind=kind, invalid=invalid, status_code=422)
        return Redirect(request.app.route_reverse("imports:detail", batch_id=batch_id), status_code=303)

    @get("/{batch_id:int}", name="imports:detail")
    async def detail(self, request: Request[Any, Any, Any], ctx: Ctx, batch_id: FromPath[int]) -> Template:
        batch = await _batch(ctx, batch_id)
        return page(request, "imports/detail.html", batch=batch, errors=_translated(batch.errors))

    @get("/{batch_id:int}/progress", name="imports:progress")
    async def progress(self, ctx: Ctx, batch_id: FromPath[int]) -> Template:
        """Polls itself until the import has finished, then shows the outcome (without the trigger)."""
        batch = await _batch(ctx, batch_id)
        return Template("imports/_batch.html", context={"batch": batch, "errors": _translated(batch.errors)})

    @get("/{batch_id:int}/errors", name="imports:errors")
    async def errors(self, ctx: Ctx, batch_id: FromPath[int]) -> Response[bytes]:
        async with ctx.db.reads() as session:
            errors = await batch_errors(session, batch_id)
        if errors is None:
            raise NotFoundException()
        rows = [[e["row"] or "", e["column"], e["message"]] for e in _translated(errors)]
        return _csv([[_("Row"), _("Column"), _("Error")], *rows], f"import-{batch_id}-errors.csv")

    @get("/template/{kind:str}", name="imports:template")
    async def template(self, kind: FromPath[str]) -> Response[bytes]:
        try:
            chosen = import_kind(kind)
        except Invalid:
            raise NotFoundException() from None
        return _csv([[column.name for column in COLUMNS[chosen]]], f"{chosen.value}.csv")


async def _index(
    request: Request[Any, Any, Any],
    ctx: AppContext,
    *,
    kind: str = "",
    invalid: Invalid | None = None,
    status_code: int = 200,
) -> Template:
    async with ctx.db.reads() as session:
        recent = await recent_batches(session)
    error = {"field": invalid.field, "message": _(invalid.message, **invalid.facts)} if invalid else None
    return page(
        request,
        "imports/index.html",
        status_code=status_code,
        kinds=list(ImportKind),
        columns=COLUMNS,
        chosen=kind or ImportKind.PRODUCTS.value,
        recent=recent,
        error=error,
        max_mb=MAX_FILE_BYTES // 10**6,
    )


async def _batch(ctx: AppContext, batch_id: int) -> BatchView:
    async with ctx.db.reads() as session:
        batch = await batch_view(session, batch_id)
    if batch is None:
        raise NotFoundException()
    return batch


def _translated(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored errors in the reader's language; dates stored as ISO text are shown as dates again."""
    return [
        {
            "row": error["row"],
            "column": error["column"],
            "message": _(error["message"], **{k: _fact(v) for k, v in error.get("facts", {}).items()}),
        }
        for error in errors
    ]


def _fact(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) and _ISO_DAY.match(value) else value


def _csv(rows: list[list[Any]], filename: str) -> Response[bytes]:
    """A CSV that Excel opens as it is: BOM, and `;` in French; cells that look like formulas defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if current_locale.get() == "fr" else ",", lineterminator="\r\n")
    writer.writerows([[_safe(cell) for cell in row] for row in rows])
    return Response(
        ("\ufeff" + buffer.getvalue()).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _safe(cell: Any) -> Any:
    return "'" + cell if isinstance(cell, str) and cell.startswith(_FORMULA) else cell
