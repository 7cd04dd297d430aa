"""The stock record, read side: the one-box search, product and location pages, movement history and CSV."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.stock import MOVEMENT_KINDS
from app.db.queries.stock_search import search_stock
from app.db.queries.stock_views import (
    HistoryFilter,
    HistoryPage,
    MovementRow,
    export_subject,
    location_detail,
    movement_history,
    product_detail,
    site_zone,
    stream_movement_history,
)
from app.db.queries.users import SiteRow
from app.domain.access import EVERYONE
from app.routes.common import principal_of, site_for, site_in, sites_of, to_first_site
from app.services.errors import NotFound
from app.web import i18n
from app.web.auth import access
from app.web.context import AppContext, Ctx
from app.web.i18n import N_
from app.web.i18n import gettext as _
from app.web.templating import is_fragment_request, page

PAGE_SIZE = 25
HISTORY_SIZE = 50
CSV_BATCH = 500  # rows per chunk sent to the client
CSV_COLUMNS = (
    N_("Date"),
    N_("Type"),
    N_("SKU"),
    N_("Designation"),
    N_("Lot"),
    N_("Expiry date"),
    N_("From"),
    N_("To"),
    N_("Quantity"),
    N_("Reason"),
    N_("Document"),
    N_("User"),
)


@dataclass(frozen=True)
class HistoryQuery:
    """The history filters as the form shows them (strings) and as the query wants them."""

    kind: str = ""
    since: str = ""  # YYYY-MM-DD, a day of the site's calendar
    until: str = ""  # inclusive
    page_no: int = 1

    @classmethod
    def read(cls, kind: str, since: str, until: str, page_no: int) -> HistoryQuery:
        """Unknown kinds and malformed dates are dropped rather than refused: a filter only narrows."""
        return cls(kind if kind in MOVEMENT_KINDS else "", _day(since), _day(until), max(page_no, 1))

    def filter(
        self, zone: ZoneInfo, product_id: int | None = None, location_id: int | None = None
    ) -> HistoryFilter:
        """The HistoryFilter for this query: days of the site's calendar become instants."""
        since = datetime.combine(date.fromisoformat(self.since), time(), zone) if self.since else None
        until = (
            datetime.combine(date.fromisoformat(self.until) + timedelta(days=1), time(), zone)
            if self.until
            else None
        )
        return HistoryFilter(product_id, location_id, self.kind or None, since, until)

    def query_string(self, page_no: int = 1) -> str:
        """The filters (and a page other than the first) as a URL query."""
        values = {"kind": self.kind, "since": self.since, "until": self.until}
        return urlencode(
            {k: v for k, v in values.items() if v} | ({"page_no": page_no} if page_no > 1 else {})
        )


def _day(value: str) -> str:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return ""


def _use_site_clock(zone: ZoneInfo) -> date:
    """Show this request's times in the site's zone; return the site's today (for expired lots)."""
    i18n.display_zone.set(zone)  # this request's context only: each request runs in its own task
    return datetime.now(zone).date()


def _history_context(
    request: Request[Any, Any, Any],
    site: SiteRow,
    filters: HistoryQuery,
    rows: HistoryPage,
    page_url: str,
    **subject: str,
) -> dict[str, Any]:
    """What _history.html needs: rows, filters, pager links and the export link (filters, not the page)."""
    csv_url = request.app.route_reverse("stock:movements_csv", site=site.code)
    newer = filters.query_string(page_no=filters.page_no - 1) if filters.page_no > 1 else None
    older = filters.query_string(page_no=filters.page_no + 1) if rows.more else None
    return {
        "history": rows,
        "filters": filters,
        "kinds": MOVEMENT_KINDS,
        "page_url": page_url,
        "newer_url": None if newer is None else f"{page_url}?{newer}",
        "older_url": None if older is None else f"{page_url}?{older}",
        "csv_url": f"{csv_url}?{urlencode(subject)}"
        + (f"&{filters.query_string()}" if filters.query_string() else ""),
    }


def provide_history_query(
    kind: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
    page_no: FromQuery[int] = 1,
) -> HistoryQuery:
    """The history filters of the query string, for the product and location pages and the export."""
    return HistoryQuery.read(kind, since, until, page_no)


Filters = NamedDependency[HistoryQuery]


class StockController(Controller):
    opt = access(EVERYONE)
    dependencies = {"filters": Provide(provide_history_query, sync_to_thread=False)}

    @get("/stock", name="stock:home")
    async def home(self, request: Request[Any, Any, Any], ctx: Ctx) -> Redirect:
        """The stock search of the person's first site (the nav link lands here)."""
        return await to_first_site(request, ctx, "stock:search")

    @get("/sites/{site:str}/stock", name="stock:search")
    async def search(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        q: FromQuery[str] = "",
        page_no: FromQuery[int] = 1,
    ) -> Template:
        principal, page_no = principal_of(request), max(page_no, 1)
        async with ctx.db.reads() as session:  # one connection for the site check and the search
            here = await site_in(session, principal, site)
            found = await search_stock(session, here.id, q, PAGE_SIZE, (page_no - 1) * PAGE_SIZE)
        pages = max(1, -(-found.total // PAGE_SIZE))
        # The site switcher is not part of the results block that each keystroke of the box fetches.
        sites = [] if is_fragment_request(request) else await sites_of(ctx, principal)
        return page(
            request,
            "stock/search.html",
            "results",
            site=here,
            sites=sites,
            q=q,
            found=found,
            page_no=page_no,
            pages=pages,
        )

    @get("/sites/{site:str}/products/{sku:path}", name="stock:product")
    async def product(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        sku: FromPath[str],
        filters: Filters,
    ) -> Template:
        here, sku = await site_for(ctx, principal_of(request), site), sku.lstrip("/")  # a SKU may hold a "/"
        async with ctx.db.reads() as session:
            zone = await site_zone(session, here.id)
            item = await product_detail(session, here.id, sku)
            if item is None:
                raise NotFound("Unknown product: {product}.", product=sku)
            rows = await _history_page(session, here, filters, filters.filter(zone, product_id=item.id))
        url = request.app.route_reverse("stock:product", site=here.code, sku=item.sku)
        history = _history_context(request, here, filters, rows, url, product=item.sku)
        today = _use_site_clock(zone)
        return page(request, "stock/product.html", "history", site=here, product=item, today=today, **history)

    @get("/sites/{site:str}/locations/{code:path}", name="stock:location")
    async def location(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        code: FromPath[str],
        filters: Filters,
    ) -> Template:
        here, code = await site_for(ctx, principal_of(request), site), code.lstrip("/")
        async with ctx.db.reads() as session:
            zone = await site_zone(session, here.id)
            place = await location_detail(session, here.id, code)
            if place is None:
                raise NotFound("Unknown location at this site: {code}.", code=code)
            rows = await _history_page(session, here, filters, filters.filter(zone, location_id=place.id))
        url = request.app.route_reverse("stock:location", site=here.code, code=place.code)
        history = _history_context(request, here, filters, rows, url, location=place.code)
        today = _use_site_clock(zone)
        return page(
            request, "stock/location.html", "history", site=here, location=place, today=today, **history
        )

    @get("/sites/{site:str}/movements.csv", name="stock:movements_csv")
    async def movements_csv(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        site: FromPath[str],
        filters: Filters,
        product: FromQuery[str] = "",
        location: FromQuery[str] = "",
    ) -> Stream:
        """The movement history as CSV for a spreadsheet, streamed: UTF-8 with BOM, ';'-separated."""
        here = await site_for(ctx, principal_of(request), site)
        async with ctx.db.reads() as session:
            zone = await site_zone(session, here.id)
            ids = await export_subject(session, here.id, product.strip() or None, location.strip() or None)
        if ids is None:
            raise NotFound("Nothing at this site is called {name}.", name=product or location)
        name = re.sub(
            r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in ("movements", here.code, product, location) if p)
        )
        return Stream(
            _csv_lines(ctx, here.id, filters.filter(zone, *ids), CsvFormat.for_request(request, zone)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )


async def _history_page(
    session: AsyncSession, site: SiteRow, query: HistoryQuery, wanted: HistoryFilter
) -> HistoryPage:
    return await movement_history(
        session,
        site.id,
        product_id=wanted.product_id,
        location_id=wanted.location_id,
        kind=wanted.kind,
        since=wanted.since,
        until=wanted.until,
        limit=HISTORY_SIZE,
        offset=(query.page_no - 1) * HISTORY_SIZE,
    )


# ---------------------------------------------------------------- CSV export

# A cell opening with one of these is a formula to a spreadsheet ("CSV injection"): reasons and documents
# are typed by people, so such text is prefixed with an apostrophe, which spreadsheets show as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CsvFormat:
    """Everything the rows need from the request, read before streaming starts."""

    zone: ZoneInfo
    header: list[str]
    labels: dict[str, str]
    datetime_format: str
    date_format: str

    @classmethod
    def for_request(cls, request: Request[Any, Any, Any], zone: ZoneInfo) -> CsvFormat:
        # The words of the movement_label macro, so that the page and the spreadsheet say the same thing.
        engine = request.app.template_engine.engine  # type: ignore[union-attr]
        macros = engine.get_template("macros/labels.html").module
        french = i18n.current_locale.get() == "fr"
        return cls(
            zone=zone,
            header=[_(title) for title in CSV_COLUMNS],
            labels={kind: html.unescape(str(macros.movement_label(kind))).strip() for kind in MOVEMENT_KINDS},
            datetime_format="%d/%m/%Y %H:%M:%S" if french else "%Y-%m-%d %H:%M:%S",
            date_format="%d/%m/%Y" if french else "%Y-%m-%d",
        )

    def row(self, m: MovementRow) -> list[Any]:
        return [
            m.occurred_at.astimezone(self.zone).strftime(self.datetime_format),
            self.labels.get(m.kind, m.kind),
            *(_text(v) for v in (m.sku, m.product_name, m.lot_code)),
            m.expiry.strftime(self.date_format) if m.expiry else "",
            *(_text(v) for v in (m.from_code, m.to_code)),
            m.delta if m.delta is not None else m.quantity,  # signed: + in, - out; a move inside unsigned
            *(_text(v) for v in (m.reason, m.document, m.actor)),
        ]


def _text(value: str | None) -> str:
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


async def _csv_lines(
    ctx: AppContext, site_id: int, wanted: HistoryFilter, fmt: CsvFormat
) -> AsyncIterator[bytes]:
    """BOM and header first, then rows in batches, read from a server-side cursor while the download lasts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(fmt.header)
    yield ("\ufeff" + buffer.getvalue()).encode()
    async with ctx.db.sessions() as session:  # a server-side cursor lives in a transaction
        pending = 0
        buffer.seek(0)
        buffer.truncate()
        async for movement in stream_movement_history(session, site_id, wanted):
            writer.writerow(fmt.row(movement))
            pending += 1
            if pending == CSV_BATCH:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
        if pending:
            yield buffer.getvalue().encode()
