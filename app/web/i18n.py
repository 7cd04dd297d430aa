"""French and English: catalogs, the request's locale, and locale-aware formatting.

The locale of a request is chosen once (the user's choice, then the `lang` cookie, then the
browser's Accept-Language, then the site default) and kept in a context variable, so templates and
error handlers translate without passing it around. Catalogs are compiled from the .po files at
start-up, so no compiled .mo file can drift from its source.
"""

from __future__ import annotations

import gettext as _gettext
import io
from contextvars import ContextVar
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from app.services.errors import N_

LOCALES = ("fr", "en")
CATALOG_DIR = Path(__file__).resolve().parent.parent / "i18n"
LANG_COOKIE = "lang"

current_locale: ContextVar[str] = ContextVar("current_locale", default="fr")
display_zone: ContextVar[ZoneInfo] = ContextVar("display_zone", default=ZoneInfo("Europe/Paris"))
_catalogs: dict[str, _gettext.NullTranslations] = {}


def load_catalogs() -> None:
    """Compile every .po file in memory. Called by create_app(), never at import."""
    for locale in LOCALES:
        po_path = CATALOG_DIR / locale / "LC_MESSAGES" / "messages.po"
        if not po_path.exists():
            _catalogs[locale] = _gettext.NullTranslations()
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        _catalogs[locale] = _gettext.GNUTranslations(buffer)


def _translations() -> _gettext.NullTranslations:
    return _catalogs.get(current_locale.get()) or _gettext.NullTranslations()


def gettext(message: str, **params: Any) -> str:
    """Translate to the request's language, then fill `{name}` placeholders (formatted per locale)."""
    text = _translations().gettext(message)
    return text.format(**{k: format_value(v) for k, v in params.items()}) if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    text = _translations().ngettext(singular, plural, n)
    return text.format(**{k: format_value(v) for k, v in {"num": n, **params}.items()})


def pgettext(context: str, message: str, **params: Any) -> str:
    """`gettext` for a word whose translation depends on where it stands: French "Allouée" for an order's
    state, "Alloué" for a column of units (context "quantity")."""
    text = _translations().pgettext(context, message)
    return text.format(**{k: format_value(v) for k, v in params.items()}) if params else text


_ = gettext
__all__ = ["N_", "gettext", "ngettext", "pgettext"]


def negotiate(accept_language: str | None, default: str) -> str:
    """The best of our locales for an Accept-Language header."""
    if accept_language:
        preferred = []
        for part in accept_language.split(","):
            tag, _sep, q = part.strip().partition(";q=")
            try:
                weight = float(q) if q else 1.0
            except ValueError:
                continue
            if tag:
                preferred.append((weight, tag.strip().replace("-", "_")))
        preferred.sort(key=lambda item: -item[0])
        chosen = Locale.negotiate([tag for _w, tag in preferred], list(LOCALES), sep="_")
        if chosen is not None:
            return chosen.language
    return default


def choose_locale(
    user_locale: str | None, cookie: str | None, accept_language: str | None, default: str
) -> str:
    for candidate in (user_locale, cookie):
        if candidate in LOCALES:
            return candidate
    return negotiate(accept_language, default)


@lru_cache(maxsize=8)
def _locale(code: str) -> Locale:
    return Locale.parse(code)


@lru_cache(maxsize=8)
def _number_pattern(digits: int) -> numbers.NumberPattern:
    return numbers.parse_pattern("#,##0" + ("." + "0" * digits if digits else ""))


@lru_cache(maxsize=8)
def _group_symbol(code: str) -> str:
    return numbers.get_group_symbol(code)


def format_number(value: float | int, digits: int = 0) -> str:
    """Grouped per locale (fr: 1 234,5); locale and pattern parsed once, as boards format hundreds."""
    code = current_locale.get()
    if digits == 0 and isinstance(value, int):  # the common case (counts, units): exact and 20x faster
        return f"{value:,}".replace(",", _group_symbol(code))
    return str(_number_pattern(digits).apply(value, _locale(code)))


def format_percent(value: float, digits: int = 0) -> str:
    """A share as a percentage per locale (fr: 87,5 %; en: 87.5%)."""
    return str(_percent_pattern(current_locale.get(), digits).apply(value, _locale(current_locale.get())))


@lru_cache(maxsize=8)
def _percent_pattern(code: str, digits: int) -> numbers.NumberPattern:
    """The locale's own percent pattern (fr puts a space before %), with `digits` decimals."""
    pattern = numbers.parse_pattern(_locale(code).percent_formats[None].pattern)
    pattern.frac_prec = (digits, digits)
    return pattern


def format_datetime(value: datetime | None) -> str:
    if value is None:
        return "—"
    local = value.astimezone(display_zone.get())
    return dates.format_datetime(
        local,
        "dd/MM/yyyy HH:mm" if current_locale.get() == "fr" else "yyyy-MM-dd HH:mm",
        locale=current_locale.get(),
    )


def format_time(value: datetime | None) -> str:
    """The time of day in the display zone (14:05): for what happened today."""
    return "—" if value is None else value.astimezone(display_zone.get()).strftime("%H:%M")


def format_moment(value: datetime | None, now: datetime) -> str:
    """The time of day when `value` falls on today (display zone), else the date and time."""
    if value is None:
        return "—"
    zone = display_zone.get()
    same_day = value.astimezone(zone).date() == now.astimezone(zone).date()
    return format_time(value) if same_day else format_datetime(value)


def minutes_since(then: datetime | None, now: datetime) -> int:
    """Whole minutes from `then` to `now` (0 when unknown or in the future)."""
    return max(int((now - then).total_seconds() // 60), 0) if then else 0


def format_minutes(minutes: int) -> str:
    """A duration for people: "12 min", "2 h 05", "3 j 22 h" (3 d 22 h)."""
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60:02d}"
    return gettext("{days} d {hours} h", days=minutes // (24 * 60), hours=minutes % (24 * 60) // 60)


def format_date(value: date | None) -> str:
    if value is None:
        return "—"
    return dates.format_date(
        value, "short" if current_locale.get() == "fr" else "medium", locale=current_locale.get()
    )


def format_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, int | float):
        return format_number(value)
    return value
