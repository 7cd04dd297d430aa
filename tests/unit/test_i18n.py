"""The catalogs are complete and current, the locale is negotiated, and numbers and dates follow it."""

from __future__ import annotations

import itertools
import re
import shlex
import string
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po

from app.web import i18n

ROOT = Path(__file__).resolve().parents[2]
FIX = "run `make i18n` and translate app/i18n/fr/LC_MESSAGES/messages.po"
NNBSP = "\u202f"  # babel's group separator for fr: a narrow no-break space


def read_catalog(locale: str) -> Catalog:
    with (i18n.CATALOG_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def make_keywords() -> dict[str, object]:
    """The extraction keywords of `make i18n`, read from the Makefile so the two cannot differ."""
    line = next(
        line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("I18N_KEYWORDS")
    )
    words = shlex.split(line.partition("=")[2])
    names = [word for flag, word in itertools.pairwise(words) if flag == "-k"]
    assert "Refused" in names, "the Makefile's I18N_KEYWORDS lost the exception classes"
    return {**DEFAULT_KEYWORDS, **parse_keywords(names)}


def extracted_msgids() -> dict[str, str]:
    """Every msgid found in the sources today, with where it was first seen."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=make_keywords(), strip_comment_tags=True
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def placeholders(text: str) -> set[str]:
    """The `{name}` fields of a str.format message (raises on unbalanced braces)."""
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def as_list(value: str | tuple | list) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.fixture
def locale() -> Iterator[Callable[[str], None]]:
    """Switch the request locale (and pin the display zone) for one test, then restore both."""
    tokens = []

    def switch(name: str) -> None:
        tokens.append((i18n.current_locale, i18n.current_locale.set(name)))

    tokens.append((i18n.display_zone, i18n.display_zone.set(ZoneInfo("Europe/Paris"))))
    yield switch
    for var, token in reversed(tokens):
        var.reset(token)


# --- the catalogs ------------------------------------------------------------------------------


def test_every_french_message_is_translated_with_the_same_placeholders():
    catalog = read_catalog("fr")
    messages = [m for m in catalog if m.id]
    assert messages, "the French catalog is empty: " + FIX
    untranslated = [m.id for m in messages if not all(as_list(m.string))]
    fuzzy = [m.id for m in messages if m.fuzzy]
    broken = []
    for message in messages:
        wanted = set().union(*(placeholders(text) for text in as_list(message.id)))
        for text in as_list(message.string):
            try:
                if text and placeholders(text) != wanted:
                    broken.append((message.id, text))
            except ValueError as exc:
                broken.append((message.id, f"{text!r}: {exc}"))
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy (check, then remove the flag): {fuzzy}"
    assert not broken, f"placeholders differ from the msgid: {broken}"


def test_messages_use_brace_placeholders_not_percent_formatting():
    percent = [m.id for m in read_catalog("fr") if m.id and re.search(r"%\(\w+\)[sd]|%[sd]", str(m.id))]
    assert not percent, f"use `{{name}}` placeholders (str.format), not %: {percent}"


def test_catalogs_hold_every_message_of_the_sources():
    found = extracted_msgids()
    assert "Unknown site: {code}." in found, "extraction did not see the Invalid(...) refusals"
    assert "Sign in" in found, "extraction did not see the templates"
    for locale_name in i18n.LOCALES:
        catalog = read_catalog(locale_name)  # obsolete (#~) entries are not in the iteration
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
        missing = sorted(f"{msgid!r} ({where})" for msgid, where in found.items() if msgid not in known)
        listing = "\n".join(missing)
        assert not missing, f"{locale_name} catalog lacks {len(missing)} message(s), {FIX}:\n{listing}"


def test_a_refusal_renders_in_french_with_its_facts(locale):
    i18n.load_catalogs()
    locale("fr")
    assert i18n.gettext("Unknown site: {code}.", code="XYZ") == "Site inconnu : XYZ."
    assert i18n.gettext("Page {page} of {pages}", page=2, pages=1234) == f"Page 2 sur 1{NNBSP}234"
    locale("en")
    assert i18n.gettext("Unknown site: {code}.", code="XYZ") == "Unknown site: XYZ."


def test_a_word_translates_by_where_it_stands(locale):
    i18n.load_catalogs()
    locale("fr")
    # An order is "allouée"; a column of units is "alloué".
    assert (i18n.gettext("Allocated"), i18n.pgettext("quantity", "Allocated")) == ("Allouée", "Alloué")
    assert (i18n.gettext("Picked"), i18n.pgettext("quantity", "Picked")) == ("Préparée", "Préparé")
    locale("en")
    assert i18n.pgettext("quantity", "Allocated") == "Allocated"


# --- choosing the locale -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("en-US,en;q=0.9", "en"),
        ("de-DE,en;q=0.5,fr;q=0.7", "fr"),
        ("en;q=0.4,fr;q=0.3", "en"),
    ],
)
def test_negotiate_picks_the_best_of_our_locales(header, expected):
    assert i18n.negotiate(header, "xx") == expected


GARBAGE = [None, "", "de-DE", "de-DE,es;q=0.8", "garbage;q=abc", ";;,,", "*", "fr;q=x"]


@pytest.mark.parametrize("header", GARBAGE)
def test_negotiate_falls_back_to_the_default(header):
    assert i18n.negotiate(header, "en") == "en"
    assert i18n.negotiate(header, "fr") == "fr"


@pytest.mark.parametrize(
    ("user", "cookie", "browser", "expected"),
    [
        ("en", "fr", "fr-FR", "en"),  # the user's own choice wins
        (None, "en", "fr-FR", "en"),  # then the cookie
        (None, None, "en-US", "en"),  # then the browser
        (None, None, None, "fr"),  # then the site default
        (None, None, "de-DE", "fr"),
        ("de", "xx", "en-GB", "en"),  # unknown choices are skipped
    ],
)
def test_choose_locale_precedence(user, cookie, browser, expected):
    assert i18n.choose_locale(user, cookie, browser, "fr") == expected


# --- formatting --------------------------------------------------------------------------------


def test_french_numbers_and_dates(locale):
    locale("fr")
    assert i18n.format_number(1234.5, 1) == f"1{NNBSP}234,5"
    assert i18n.format_number(1234567) == f"1{NNBSP}234{NNBSP}567"
    # Europe/Paris is UTC+1 in November.
    assert i18n.format_datetime(datetime(2026, 11, 25, 13, 5, tzinfo=UTC)) == "25/11/2026 14:05"
    assert i18n.format_datetime(None) == "—"


def test_a_moment_of_today_is_its_time_and_of_another_day_its_date_and_time(locale):
    locale("fr")
    now = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    assert i18n.format_moment(datetime(2026, 11, 30, 6, 0, tzinfo=UTC), now) == "07:00"
    # 23:15 UTC is already the 1st of December in Paris: another day there.
    assert i18n.format_moment(datetime(2026, 11, 30, 23, 15, tzinfo=UTC), now) == "01/12/2026 00:15"
    assert i18n.format_moment(None, now) == "—"


def test_english_numbers_and_dates(locale):
    locale("en")
    assert i18n.format_number(1234.5, 1) == "1,234.5"
    assert i18n.format_number(1234567) == "1,234,567"
    assert i18n.format_datetime(datetime(2026, 11, 25, 13, 5, tzinfo=UTC)) == "2026-11-25 14:05"


def test_every_refusal_class_is_an_extraction_keyword():
    """A refusal's message is its first argument: each class must be a keyword, or its text stays English."""
    import importlib
    import pkgutil

    import app
    from app.services.errors import Refused, _all_subclasses

    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)
    keywords = set(re.findall(r"-k (\w+)", (ROOT / "Makefile").read_text()))
    missing = {kind.__name__ for kind in _all_subclasses(Refused)} - keywords
    assert missing == set(), f"add -k {' -k '.join(sorted(missing))} to I18N_KEYWORDS in the Makefile"
