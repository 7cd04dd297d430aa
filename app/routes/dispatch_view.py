"""What the dispatch screens show: a preview (or two, compared), a committed run, their explanation."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from math import ceil
from typing import Any

from app.db.queries.dispatch_views import DestinationTotal, ExplanationRow, names_of
from app.db.session import Database
from app.domain.allocation import Explanation, Policy, Rounding
from app.services.dispatch_runs import RunOptions, RunPreview, explanation_fields, preview_dispatch_runs
from app.web.i18n import N_

PAGE_SIZE = 50
CHART_BARS = 40  # destinations drawn in the fill-rate chart (worst served first); the table lists them all

POLICY_LABELS = {
    Policy.PROPORTIONAL: N_("Proportional to need"),
    Policy.MINIMUMS_FIRST: N_("Minimums first"),
    Policy.QUOTA: N_("Quota per destination"),
    Policy.EVEN: N_("Even split"),
    Policy.STRICT_PRIORITY: N_("Strict priority (first come, first served)"),
}
ROUNDING_LABELS = {
    Rounding.LARGEST_REMAINDER: N_("Largest remainder"),
    Rounding.SAINTE_LAGUE: N_("Sainte-Laguë (more stock never takes a pack away)"),
}
REASON_LABELS = {
    "served_in_full": N_("Served in full"),
    "capped_by_max": N_("Capped by its maximum"),
    "whole_packs_only": N_("Whole packs only"),
    "minimum_granted": N_("Minimum granted"),
    "minimum_partial": N_("Part of its minimum: packs ran out"),
    "remainder_plus_one": N_("Largest remainder: one pack more"),
    "rounded_up": N_("Rounded up"),
    "rounded_down": N_("Rounded down"),
    "proportional_share": N_("Proportional share"),
    "priority_order": N_("Served in priority order"),
    "packs_ran_out": N_("Packs ran out before its turn"),
    "tier_not_served": N_("Its tier was not served"),
    "no_stock": N_("No stock"),
    "nothing_needed": N_("Nothing needed"),
}


@dataclass(frozen=True)
class Filters:
    """The explanation table's filters, as the form sends them."""

    q: str = ""
    show: str = "short"  # "short": only lines not served in full; "all"
    page_no: int = 1

    @property
    def short_only(self) -> bool:
        return self.show != "all"

    def matches(self, sku: str, destination: str) -> bool:
        needle = self.q.strip().lower()
        return not needle or needle in sku.lower() or needle in destination.lower()


@dataclass(frozen=True)
class PreviewView:
    preview: RunPreview
    rows: list[ExplanationRow]
    matching_rows: int
    destinations: list[DestinationTotal]
    summary: dict[str, Any]  # the run's figures, summed in the thread with the rest
    compared: PreviewView | None = None
    key: str = ""  # the idempotency key of the commit form

    @property
    def options(self) -> RunOptions:
        return self.preview.options

    @property
    def comparison(self) -> list[tuple[DestinationTotal, DestinationTotal]]:
        if self.compared is None:
            return []
        other = {d.code: d for d in self.compared.destinations}
        return [
            (d, other.get(d.code, DestinationTotal(d.code, d.name, d.need_units, 0)))
            for d in self.destinations
        ]


def pages(total: int) -> int:
    return max(ceil(total / PAGE_SIZE), 1)


def chart_bars(totals: list[DestinationTotal]) -> list[DestinationTotal]:
    """The worst-served destinations first: what a supervisor looks at before committing."""
    return sorted(totals, key=lambda d: (d.fill_rate, d.code))[:CHART_BARS]


async def build_preview(
    db: Database, site_id: int, options: RunOptions, filters: Filters, now: Any, compare: RunOptions | None
) -> PreviewView:
    """Preview the run (and another policy's, to compare, on the same reading), with one page of its
    explanation."""
    rules = [options] if compare is None or compare == options else [options, compare]
    previews = [
        await _view(db, preview, filters)
        for preview in await preview_dispatch_runs(db, site_id, rules, now=now)
    ]
    compared = previews[1] if len(previews) > 1 else None
    return replace(previews[0], compared=compared, key=uuid.uuid4().hex)


async def _view(db: Database, preview: RunPreview, filters: Filters) -> PreviewView:
    # A large site's preview explains 100,000 lines: they are filtered and summed in a thread, off the
    # event loop (as the plan itself is, see app/services/dispatch_runs.py).
    selected = await asyncio.to_thread(_select, preview, filters)
    demand = preview.demand
    product_ids, destination_ids = demand.product_id_by_sku, demand.destination_id_by_code
    async with db.reads() as session:
        product_names, destination_names = await names_of(
            session,
            sorted({product_ids[sku] for sku, _ in selected.page}),
            sorted(destination_ids.values()),
        )
    rows = [
        ExplanationRow(
            sku,
            product_names.get(product_ids[sku], ""),
            line.destination_code,
            destination_names.get(destination_ids[line.destination_code], ""),
            *explanation_fields(line),
        )
        for sku, line in selected.page
    ]
    totals = [
        DestinationTotal(code, destination_names.get(destination_ids[code], ""), need, sent)
        for code, (need, sent) in sorted(selected.by_destination.items())
    ]
    return PreviewView(preview, rows, selected.matching, totals, selected.summary)


@dataclass(frozen=True)
class _Selection:
    matching: int  # explanation lines that pass the filters
    page: list[tuple[str, Explanation]]  # (SKU, line) of the page asked for
    by_destination: dict[str, tuple[int, int]]  # units needed and sent per destination code
    summary: dict[str, Any]


def _select(preview: RunPreview, filters: Filters) -> _Selection:
    matching = [
        (allocation.supply.product, line)
        for allocation in preview.plan.allocations
        for line in allocation.lines
        if (not filters.short_only or line.units < line.need_units)
        and filters.matches(allocation.supply.product, line.destination_code)
    ]
    start = (filters.page_no - 1) * PAGE_SIZE
    need: dict[str, int] = {}
    sent: dict[str, int] = {}
    for allocation in preview.plan.allocations:
        for line in allocation.lines:
            need[line.destination_code] = need.get(line.destination_code, 0) + line.need_units
            sent[line.destination_code] = sent.get(line.destination_code, 0) + line.units
    return _Selection(
        len(matching),
        matching[start : start + PAGE_SIZE],
        {code: (need[code], sent[code]) for code in need},
        preview.summary(),
    )
