"""The stock suite's data and load: a realistic stock, search terms, write plans, and the checks after.

- `prepare_stock`: stock for a few hundred products in 2-3 storage locations each, booked through
  `app.services.stock.set_opening_stock` (as a go-live import does), unless the database already holds
  stock; then what to search for and which (product, lot, locations) the write bench moves.
- Lua scripts for wrk: the search cycles through ~200 terms; the writes build each POST body and a
  unique Idempotency-Key per request, and log every answer's status and movement id to a file.
- `verify_writes`: after the run, every 201 is one movement and every movement one key (no duplicate),
  and the ledger equals the balances.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from app.db.urls import DatabaseUrls
from bench.database import BENCH_PASSWORD, BENCH_USER

Log = Callable[[str], None]

SEARCH_SITE = "LYS"
STOCKED = {"LYS": 400, "LIL": 250}  # products given stock at each site
HOT_PRODUCTS = 4  # the "hot" write variant: every request on these few products
HOT_QUANTITY = 5000  # their stock per location, so random transfers never run one dry
SEED_DOCUMENT = "BENCH-SEED"
MOVEMENTS_PATH = "/api/v1/movements"
RECEIPT_SHARE = 0.5  # the rest are transfers between two locations holding the product


@dataclass(frozen=True)
class Slot:
    """What one write request may move: a product (and lot) at a site, and the locations holding it."""

    site: str
    sku: str
    lot: str | None
    expiry: date | None
    locations: tuple[str, ...]  # at least two storage locations with stock

    def lua(self) -> str:
        fields = {"site": self.site, "product": self.sku}
        if self.lot is not None:
            fields["lot"] = self.lot
        if self.expiry is not None:
            fields["expiry"] = self.expiry.isoformat()
        common = json.dumps(fields, ensure_ascii=True)[1:-1]  # the members, without the braces
        return f"{{{_lua_string(common)}, {{{', '.join(_lua_string(c) for c in self.locations)}}}}}"


@dataclass(frozen=True)
class StockPlan:
    terms: list[tuple[str, str]]  # (kind, text) searched at SEARCH_SITE
    spread: list[Slot]
    hot: list[Slot]
    movements: int  # stock_movements rows before the write bench
    balances: int


# ------------------------------------------------------------------------------ preparing the stock


def prepare_stock(urls: DatabaseUrls, seed: int, log: Log) -> StockPlan:
    return asyncio.run(_prepare_stock(urls, seed, log))


async def _prepare_stock(urls: DatabaseUrls, seed: int, log: Log) -> StockPlan:
    conn = await asyncpg.connect(urls.libpq)
    try:
        if await conn.fetchval("SELECT count(*) FROM stock_balances"):
            log("stock: the database already holds stock, kept as is")
        else:
            started = time.monotonic()
            count = await _seed_stock(conn, urls, seed)
            log(f"stock: {count} opening-stock movements booked in {time.monotonic() - started:.1f}s")
            await conn.execute("ANALYZE")  # as a live database would have: plans for this much stock
        rng = random.Random(seed)
        slots = await _slots(conn)
        hot = await _hot_slots(conn)
        terms = await _search_terms(conn, rng)
        movements = int(await conn.fetchval("SELECT count(*) FROM stock_movements"))
        balances = int(await conn.fetchval("SELECT count(*) FROM stock_balances"))
    finally:
        await conn.close()
    log(
        f"stock: {balances} balances, {movements} movements; writes over {len(slots)} product/lot slots "
        f"({sum(len(s.locations) for s in slots)} balance keys), hot variant over {len(hot)}; "
        f"{len(terms)} search terms"
    )
    return StockPlan(terms, slots, hot, movements, balances)


async def _seed_stock(conn: asyncpg.Connection, urls: DatabaseUrls, seed: int) -> int:
    """The stock at go-live: 2-3 storage locations per product, lots (and expiry dates) where tracked.

    Booked by `app.services.stock.set_opening_stock` (the import's path: locks, ledger and balances as
    every change, "opening stock" adjustments) in one transaction: seconds, where a receipt per line
    through `record_stock_change` takes a quarter of a minute.
    """
    from app.db.session import Database, sqlalchemy_config
    from app.services.stock import Actor, OpeningLine, set_opening_stock
    from app.settings import DatabaseSettings

    rng = random.Random(seed)
    user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", BENCH_USER)
    products = await conn.fetch(
        "SELECT sku, pack_size, lot_tracked, expiry_tracked FROM products WHERE is_active ORDER BY sku"
    )
    sites = {r["code"]: r["id"] for r in await conn.fetch("SELECT id, code FROM sites ORDER BY code")}
    today = datetime.now(UTC).date()
    lines: list[OpeningLine] = []
    for site, site_id in sites.items():
        storage = [
            r["code"]
            for r in await conn.fetch(
                "SELECT code FROM locations WHERE site_id = $1 AND kind = 'storage' AND is_active "
                "ORDER BY pick_seq",
                site_id,
            )
        ]
        wanted = STOCKED.get(site, 100)
        for n, product in enumerate(rng.sample(list(products), min(wanted, len(products)))):
            hot = site == SEARCH_SITE and n < HOT_PRODUCTS and not product["lot_tracked"]
            lot = f"L{rng.randrange(100_000, 999_999)}" if product["lot_tracked"] else None
            expiry = today + timedelta(days=rng.randrange(20, 400)) if product["expiry_tracked"] else None
            for location in rng.sample(storage, rng.choice((2, 2, 3))):
                quantity = HOT_QUANTITY if hot else max(100, rng.randrange(10, 60) * product["pack_size"])
                lines.append(OpeningLine(site, location, product["sku"], lot, expiry, quantity))
    db = Database(sqlalchemy_config(urls, DatabaseSettings(), application_name="bench-seed"))
    try:
        async with db.transaction() as session:
            return await set_opening_stock(
                session,
                sites,
                lines,
                actor=Actor(user_id=user_id, scope=str(user_id)),
                now=datetime.now(UTC),
                document=SEED_DOCUMENT,
            )
    finally:
        await db.dispose()


_SLOTS = """
    SELECT s.code AS site, p.sku, lot.code AS lot, lot.expiry, array_agg(l.code ORDER BY l.code) AS locations,
           min(b.on_hand) AS least
    FROM stock_balances b
    JOIN locations l ON l.id = b.location_id AND l.kind = 'storage' AND l.is_active
    JOIN sites s ON s.id = l.site_id
    JOIN products p ON p.id = b.product_id AND p.is_active
    LEFT JOIN lots lot ON lot.id = b.lot_id
    WHERE b.on_hand >= 20
    GROUP BY s.code, p.sku, lot.code, lot.expiry
    HAVING count(*) >= 2
"""


def _slot(row: asyncpg.Record) -> Slot:
    return Slot(row["site"], row["sku"], row["lot"], row["expiry"], tuple(row["locations"]))


async def _slots(conn: asyncpg.Connection) -> list[Slot]:
    return [_slot(r) for r in await conn.fetch(_SLOTS + " ORDER BY 1, 2, 3")]


async def _hot_slots(conn: asyncpg.Connection) -> list[Slot]:
    """The few lot-less slots with the most stock (the seeded hot ones)."""
    rows = await conn.fetch(
        f"SELECT * FROM ({_SLOTS}) t WHERE lot IS NULL ORDER BY least DESC, sku LIMIT {HOT_PRODUCTS}"
    )
    return [_slot(r) for r in rows]


async def _search_terms(conn: asyncpg.Connection, rng: random.Random) -> list[tuple[str, str]]:
    """What people type or scan at the search site: SKUs, GTINs, name fragments, lots, locations."""
    stocked = await conn.fetch(
        """
        SELECT DISTINCT p.sku, p.name, lot.code AS lot, l.code AS location,
               (SELECT min(g.code) FROM product_barcodes g WHERE g.product_id = p.id AND g.units = 1) AS gtin
        FROM stock_balances b
        JOIN locations l ON l.id = b.location_id
        JOIN sites s ON s.id = l.site_id AND s.code = $1
        JOIN products p ON p.id = b.product_id
        LEFT JOIN lots lot ON lot.id = b.lot_id
        WHERE b.on_hand > 0
        ORDER BY 1, 3, 4
        """,
        SEARCH_SITE,
    )
    unstocked = await conn.fetch(
        """
        SELECT sku FROM products p WHERE NOT EXISTS (
            SELECT 1 FROM stock_balances b JOIN locations l ON l.id = b.location_id
            JOIN sites s ON s.id = l.site_id AND s.code = $1 WHERE b.product_id = p.id)
        ORDER BY sku LIMIT 200
        """,
        SEARCH_SITE,
    )
    rows = list(stocked)
    names = sorted({r["name"] for r in rows})
    words = sorted({w for n in names for w in re.findall(r"[^\W\d_]{4,}", n)})
    terms: list[tuple[str, str]] = []
    terms += [("sku", r["sku"]) for r in _sample(rng, rows, 60)]
    terms += [("gtin", r["gtin"]) for r in _sample(rng, [r for r in rows if r["gtin"]], 40)]
    terms += [("word", w.lower()) for w in _sample(rng, words, 25)]  # typed in lower case
    terms += [("words", " ".join(n.split()[:2])) for n in _sample(rng, names, 15)]  # "Yaourt nature"
    terms += [("partial", w[:4].lower()) for w in _sample(rng, words, 10)]  # still typing
    terms += [("lot", r["lot"]) for r in _sample(rng, [r for r in rows if r["lot"]], 20)]
    terms += [("location", c) for c in _sample(rng, sorted({r["location"] for r in rows}), 20)]
    terms += [("unstocked", r["sku"]) for r in _sample(rng, list(unstocked), 10)]
    unique = list(dict.fromkeys(terms))
    rng.shuffle(unique)
    return unique


def _sample(rng: random.Random, items: list[Any], n: int) -> list[Any]:
    return rng.sample(items, min(n, len(items)))


# ------------------------------------------------------------------------------ wrk scripts


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def search_paths(terms: Iterable[tuple[str, str]], site: str = SEARCH_SITE) -> list[str]:
    return [f"/sites/{site}/stock?q={quote(text, safe='')}" for _, text in terms]


def search_script(paths: list[str], folder: Path) -> Path:
    """Each request takes the next path of the list (each wrk thread starts elsewhere in it)."""
    lines = ",\n".join(f"  {_lua_string(p)}" for p in paths)
    script = folder / "search.lua"
    script.write_text(
        f"""-- generated by bench/stock.py: the stock search, one term after the other
local paths = {{
{lines}
}}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("offset", threads * 37)
end
local i = 0
function init(args)
  i = (offset or 0) % #paths
end
function request()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
"""
    )
    return script


def writes_script(slots: list[Slot], folder: Path, name: str) -> Path:
    """POST /api/v1/movements: receipts and transfers over `slots`, a unique Idempotency-Key each.

    Script arguments: the key prefix (unique per run) and the path prefix of the answer logs (one file
    per wrk thread, a line `status movement_id` per answer, line-buffered so none is lost at exit).
    """
    lines = ",\n".join(f"  {s.lua()}" for s in slots)
    script = folder / f"{name}.lua"
    script.write_text(
        f"""-- generated by bench/stock.py: movements through the API, receipts and transfers
local slots = {{
{lines}
}}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local counter, tag, out, headers = 0, "", nil, {{}}
function init(args)
  tag = args[1]
  out = io.open(args[2] .. "." .. id, "w")
  out:setvbuf("line")
  for k, v in pairs(wrk.headers) do headers[k] = v end
  math.randomseed({int(time.time()) % 100_000} + id)
end
function request()
  counter = counter + 1
  local slot = slots[math.random(#slots)]
  local places = slot[2]
  local body
  if math.random() < {RECEIPT_SHARE} then
    body = string.format('{{"kind":"receipt",%s,"quantity":%d,"to":"%s"}}',
      slot[1], math.random(1, 4), places[math.random(#places)])
  else
    local i = math.random(#places)
    local j = math.random(#places - 1)
    if j >= i then j = j + 1 end
    body = string.format('{{"kind":"transfer",%s,"quantity":%d,"from":"%s","to":"%s"}}',
      slot[1], math.random(1, 3), places[i], places[j])
  end
  headers["Idempotency-Key"] = string.format("%s-%d-%d", tag, id, counter)
  return wrk.format("POST", "{MOVEMENTS_PATH}", headers, body)
end
function response(status, hdrs, body)
  local movement = status == 201 and string.match(body, '"movements":%[(%d+)') or ""
  out:write(status, " ", movement, "\\n")
end
"""
    )
    return script


@dataclass
class Answers:
    """What wrk's writes got back, read from the answer logs."""

    statuses: Counter[int] = field(default_factory=Counter)
    movement_ids: list[int] = field(default_factory=list)

    def add(self, other: Answers) -> None:
        self.statuses.update(other.statuses)
        self.movement_ids += other.movement_ids


def read_answers(prefix: Path) -> Answers:
    answers = Answers()
    for log in sorted(prefix.parent.glob(prefix.name + ".*")):
        for line in log.read_text().splitlines():
            status, _, movement = line.partition(" ")
            answers.statuses[int(status)] += 1
            if movement.strip():
                answers.movement_ids.append(int(movement))
    return answers


# ------------------------------------------------------------------------------ API helpers


def api_token(base_url: str) -> str:
    response = httpx.post(
        base_url + "/api/v1/auth/token", json={"username": BENCH_USER, "password": BENCH_PASSWORD}, timeout=30
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"POST /api/v1/auth/token gave HTTP {response.status_code}:\n{response.text[:500]}"
        )
    return str(response.json()["access_token"])


def movement_body(rng: random.Random, slot: Slot) -> dict[str, Any]:
    """A receipt or a transfer of `slot`, as the wrk script builds them."""
    body: dict[str, Any] = {"site": slot.site, "product": slot.sku}
    if slot.lot is not None:
        body["lot"] = slot.lot
    if slot.expiry is not None:
        body["expiry"] = slot.expiry.isoformat()
    if rng.random() < RECEIPT_SHARE:
        return body | {"kind": "receipt", "quantity": rng.randint(1, 4), "to": rng.choice(slot.locations)}
    source, target = rng.sample(slot.locations, 2)
    return body | {"kind": "transfer", "quantity": rng.randint(1, 3), "from": source, "to": target}


def post_movement(client: httpx.Client, body: dict[str, Any], key: str) -> int:
    """One movement through the API (the client carries the bearer token); returns its movement id."""
    response = client.post(MOVEMENTS_PATH, json=body, headers={"Idempotency-Key": key})
    match = re.search(r'"movements":\[(\d+)', response.text)
    if response.status_code != 201 or not match:
        raise RuntimeError(
            f"POST {MOVEMENTS_PATH} {body} gave HTTP {response.status_code}:\n{response.text[:500]}"
        )
    return int(match[1])


def check_search(base_url: str, headers: dict[str, str], paths: list[str]) -> int:
    """Every term answers the results fragment (not a page, not an error); returns how many find a product."""
    finding = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for path in paths:
            response = client.get(path)
            body = response.text
            if response.status_code != 200 or 'id="stock-results"' not in body or "<html" in body:
                raise RuntimeError(
                    f"GET {path} gave HTTP {response.status_code}, not the fragment:\n{body[:500]}"
                )
            finding += "<tbody>" in body
    return finding


# ------------------------------------------------------------------------------ after the run


@dataclass(frozen=True)
class WriteCheck:
    answered: int  # 201 answers seen by the load generator (and the checks)
    distinct_answered: int
    answered_missing: int  # 201 answers whose movement is not in the ledger
    new_movements: int
    keys: int  # idempotency keys stored by the bench's requests
    keys_created: int  # ... with a 201 answer
    keyed_movements: int  # movement ids named by those answers
    distinct_keyed: int
    unkeyed: int  # new movements no stored answer names
    ledger_mismatches: int
    negative: int

    @property
    def ok(self) -> bool:
        return (
            self.distinct_answered == self.answered
            and self.answered_missing == 0
            and self.keyed_movements == self.distinct_keyed == self.new_movements
            and self.unkeyed == 0
            and self.ledger_mismatches == 0
            and self.negative == 0
        )

    def lines(self) -> Iterator[str]:
        yield (
            f"{self.answered} answers 201 named {self.distinct_answered} distinct movements, "
            f"{self.answered - self.answered_missing} of them in the ledger"
        )
        yield (
            f"{self.new_movements} movements written; {self.keys} idempotency keys stored "
            f"({self.keys_created} with 201) naming {self.keyed_movements} movements, "
            f"{self.distinct_keyed} distinct; movements named by no key: {self.unkeyed}"
        )
        yield (
            f"{self.new_movements - self.answered} movements were committed for requests still in flight "
            "when wrk stopped (their answers were never read; each has its stored answer)"
        )
        yield f"ledger vs balances: {self.ledger_mismatches} mismatches, {self.negative} negative balances"


def verify_writes(
    urls: DatabaseUrls, first_movement: int, key_prefix: str, answered: list[int]
) -> WriteCheck:
    return asyncio.run(_verify(urls, first_movement, key_prefix, answered))


async def _verify(
    urls: DatabaseUrls, first_movement: int, key_prefix: str, answered: list[int]
) -> WriteCheck:
    from tests.integration.stock_fixtures import LEDGER_MISMATCHES  # one definition of "ledger = balances"

    conn = await asyncpg.connect(urls.libpq)
    # One snapshot for every read: requests still in flight when wrk stopped keep committing meanwhile.
    snapshot = conn.transaction(isolation="repeatable_read", readonly=True)
    await snapshot.start()
    try:
        new = {r[0] for r in await conn.fetch("SELECT id FROM stock_movements WHERE id > $1", first_movement)}
        keys = await conn.fetch(
            "SELECT status, response FROM idempotency_keys WHERE key LIKE $1", key_prefix + "-%"
        )
        keyed = [
            int(m) for k in keys if k["status"] == 201 for m in json.loads(k["response"]).get("movements", [])
        ]
        mismatches = len(await conn.fetch(str(LEDGER_MISMATCHES)))
        negative = await conn.fetchval(
            "SELECT count(*) FROM stock_balances WHERE on_hand < 0 OR reserved > on_hand"
        )
    finally:
        await snapshot.rollback()
        await conn.close()
    return WriteCheck(
        answered=len(answered),
        distinct_answered=len(set(answered)),
        answered_missing=len(set(answered) - new),
        new_movements=len(new),
        keys=len(keys),
        keys_created=sum(k["status"] == 201 for k in keys),
        keyed_movements=len(keyed),
        distinct_keyed=len(set(keyed)),
        unkeyed=len(new - set(keyed)),
        ledger_mismatches=mismatches,
        negative=int(negative),
    )


async def movement_high_mark(urls: DatabaseUrls) -> int:
    conn = await asyncpg.connect(urls.libpq)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM stock_movements"))
    finally:
        await conn.close()
