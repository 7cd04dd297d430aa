"""Undoing a committed dispatch run: what it reserved and nobody is picking yet goes back to stock.

A supervisor who committed a run by mistake (the wrong policy, orders imported twice) should not have to
cancel orders to get their stock back. Undoing the run releases its open tasks on lists nobody has taken:
the stock they set aside is free again, their orders go back to released (the next run serves them
afresh), and the lists left with nothing to pick are cancelled. Lists being picked are kept as they are:
their picker goes on; a supervisor who wants them back gives them back first, then undoes the rest.

One transaction under the site's dispatch lock (no run reserves meanwhile), the run's open lists locked
before their tasks are read (nobody takes one meanwhile), idempotent, journaled.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import live
from app.db.live import Topic
from app.db.session import Database, driver
from app.services import idempotency, journal
from app.services.dispatch_runs import hold_site_dispatch
from app.services.errors import NotFound, Refused
from app.services.order_progress import refresh_order_states
from app.services.reservations import release_tasks
from app.services.stock import Actor


class NothingToUndo(Refused):
    status = 409
    title = "Nothing to undo"


_SITE_OF_RUN = "SELECT site_id FROM dispatch_runs WHERE id = $1"
_LOCK_RUN = "SELECT status, undone FROM dispatch_runs WHERE id = $1 FOR UPDATE"
_LOCK_OPEN_LISTS = "SELECT id FROM pick_lists WHERE run_id = $1 AND status = 'open' ORDER BY id FOR UPDATE"
_OPEN_TASKS_OF = """
    SELECT id FROM pick_tasks WHERE pick_list_id = ANY($1::bigint[]) AND status = 'open' ORDER BY id
"""
_LISTS_KEPT = "SELECT count(*) FROM pick_lists WHERE run_id = $1 AND status = 'taken'"
_MARK_UNDONE = "UPDATE dispatch_runs SET undone = $2::jsonb, updated_at = $3 WHERE id = $1"


async def undo_dispatch_run(
    db: Database,
    run_id: int,
    *,
    site_ids: Collection[int] | None,
    actor: Actor,
    actor_name: str,
    idempotency_key: str,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """Give back what the run reserved on lists nobody has taken; returns what was given back."""
    key = idempotency.check_key(idempotency_key)

    async def operation(session: AsyncSession) -> dict[str, Any]:
        pg = await driver(session)
        site_id = await pg.fetchval(_SITE_OF_RUN, run_id)
        if site_id is None or (site_ids is not None and site_id not in site_ids):
            raise NotFound("Unknown dispatch run.")
        await hold_site_dispatch(session, site_id)
        run = await pg.fetchrow(_LOCK_RUN, run_id)
        if run["status"] != "committed":
            raise NothingToUndo("Run {run} reserved nothing: there is nothing to undo.", run=run_id)
        if run["undone"] is not None:
            raise NothingToUndo("Run {run} was already undone.", run=run_id)
        lists = [row[0] for row in await pg.fetch(_LOCK_OPEN_LISTS, run_id)]
        tasks = [row[0] for row in await pg.fetch(_OPEN_TASKS_OF, lists)]
        if not tasks:
            raise NothingToUndo(
                "Every list of run {run} is being picked or finished: nothing is left to give back.",
                run=run_id,
            )
        released = await release_tasks(session, tasks, now)
        await refresh_order_states(session, released.order_ids, now)
        undone = {
            "at": now.isoformat(),
            "by": actor_name,
            "tasks": released.tasks,
            "units": released.units,
            "orders": len(released.order_ids),
            "lists_cancelled": released.lists_cancelled,
            "lists_kept": await pg.fetchval(_LISTS_KEPT, run_id),
        }
        await pg.execute(_MARK_UNDONE, run_id, json.dumps(undone), now)
        live.changed(session, site_id, Topic.PICKING, Topic.STOCK, Topic.ORDERS, Topic.DISPATCH)
        await journal.record(
            session,
            "dispatch_run.undone",
            actor_id=actor.user_id,
            actor_name=actor_name,
            run=run_id,
            **{name: value for name, value in undone.items() if name not in ("at", "by")},
        )
        return {"run_id": run_id, **undone}

    return await idempotency.once(db, actor.scope, key, {"undo_run": run_id}, now, operation)
