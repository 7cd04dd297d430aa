"""The Jinja environment: autoescape, i18n, locale-aware filters, and page-or-fragment responses."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request
from litestar.plugins.jinja import JinjaTemplateEngine as Engine
from litestar.template.config import TemplateConfig

from app.web import i18n

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = TEMPLATE_DIR.parent / "static"
STATIC_PATH = "/static"  # where app/asgi.py serves STATIC_DIR


def static_url(file_path: str) -> str:
    """The address of a static file, with a short digest of its content (`?v=`): a release that changes
    the file changes the address, so no browser or proxy keeps the old one, and the files can be cached
    for good (see app/asgi.py). The file is read again only when it changes (edited while the server
    runs)."""
    path = STATIC_DIR / file_path
    return f"{STATIC_PATH}/{file_path}?v={_digest(path, path.stat().st_mtime_ns)}"


@cache
def _digest(path: Path, modified_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message, **kw: i18n.gettext(message, **kw),
        ngettext=lambda s, p, n, **kw: i18n.ngettext(s, p, n, **kw),
        pgettext=lambda c, m, **kw: i18n.pgettext(c, m, **kw),
        newstyle=False,  # our gettext fills {name} placeholders itself (newstyle would apply % formatting)
    )
    env.filters.update(
        number=i18n.format_number,
        percent=i18n.format_percent,
        datetime=i18n.format_datetime,
        date=i18n.format_date,
        clock=i18n.format_time,
        moment=i18n.format_moment,
        minutes=i18n.format_minutes,
    )
    env.globals["minutes_since"] = i18n.minutes_since
    env.globals["current_locale"] = i18n.current_locale.get
    env.globals["static_url"] = static_url
    return env


def template_config() -> TemplateConfig[Engine]:
    return TemplateConfig(instance=Engine.from_environment(make_environment()))


def is_fragment_request(request: Request[Any, Any, Any]) -> bool:
    """An htmx swap wants the fragment; boosted navigation and history restores want the page."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def page(
    request: Request[Any, Any, Any],
    template: str,
    fragment: str | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMXBlockTemplate:
    """The full page, or only `fragment` (a block of the same template) for an htmx swap."""
    block = fragment if fragment and is_fragment_request(request) else None
    response = HTMXBlockTemplate(
        template_name=template, block_name=block, context=context, status_code=status_code
    )
    response.headers["Vary"] = "HX-Request, Accept-Language, Cookie"
    return response
