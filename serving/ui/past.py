"""A customer's past as the page prints it, in the bank's local time (``time_zone``).

Two sources: the warehouse's contacts of the 12 months to the cutoff, which ``retain score``
put in the snapshot (``contacts.parquet``: the page never reads the warehouse), and the
outcomes recorded since on the page or through the API (the outcome store). An outcome
exported to the warehouse (``retain outcomes export``) is in both: it is shown once, from the
store, which keeps its note and next step. The store's times are UTC; the warehouse's are the
bank's local time already.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

import pandas as pd

from serving.api.state import Snapshot, plain_id
from serving.outcomes import EXPORT_ID_BASE, Outcome
from serving.ui.words import CHANNELS, OUTCOMES, WORDS, word

SHOWN = "%Y-%m-%d %H:%M"


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(value, time_zone: str) -> datetime | None:
    """A store's UTC time (ISO text) or a warehouse's local time as naive local time."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else pd.Timestamp(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone(time_zone)).replace(tzinfo=None)
    return pd.Timestamp(moment).to_pydatetime()


def exported_ids(outcomes: list[Outcome]) -> set:
    """The interaction ids ``retain outcomes export`` gives these outcomes (either id kind)."""
    return {EXPORT_ID_BASE + o.outcome_id for o in outcomes} | {
        f"OUT-{o.outcome_id}" for o in outcomes
    }


def contact_rows(
    snapshot: Snapshot, recorded: list[Outcome], key, lang: str, time_zone: str
) -> list[dict]:
    """Every contact of the customer, newest first: recorded outcomes and the warehouse's."""
    rows = [
        {
            "when": local(o.recorded_at, time_zone),
            "channel": word(CHANNELS, o.channel, lang),
            "reached": word(WORDS, "yes" if o.reached else "no", lang),
            "result": word(OUTCOMES, o.result, lang),
            "next_step": o.next_step,
            "note": o.note,
            "by": o.recorded_by,
        }
        for o in recorded
    ]
    seen = exported_ids(recorded)
    for c in snapshot.contacts_of(key).itertuples():
        if plain_id(c.interaction_id) in seen:
            continue
        rows.append(
            {
                "when": local(c.ts, time_zone),
                "channel": word(CHANNELS, c.kind, lang),
                "reached": "",
                "result": word(OUTCOMES, c.outcome, lang) if isinstance(c.outcome, str) else "",
                "next_step": "",
                "note": "",
                "by": snapshot.rm_name(str(c.rm_id)) or str(c.rm_id),
            }
        )
    rows.sort(key=lambda r: r["when"] or datetime.min, reverse=True)
    return [{**r, "time": r["when"].strftime(SHOWN) if r["when"] else ""} for r in rows]


def last_contacts(
    snapshot: Snapshot, latest: dict, keys: list, cutoff: str, lang: str, time_zone: str
) -> dict:
    """Per customer key: when it was last contacted, with what result, and whether an
    outcome was recorded since the cutoff (``contacted``: it is done this month). ``latest``:
    the store's newest outcome by plain id (``OutcomeStore.latest``)."""
    found = snapshot.last_contact.reindex(pd.Index(keys, dtype=snapshot.last_contact.index.dtype))
    out = {}
    cut = pd.Timestamp(cutoff).date()
    for key, row in zip(keys, found.itertuples(), strict=True):
        when = local(row.ts, time_zone)
        result = row.outcome if isinstance(row.outcome, str) else None
        outcome = latest.get(plain_id(key))
        contacted = False
        if outcome is not None:
            recorded = local(outcome.recorded_at, time_zone)
            contacted = recorded.date() > cut
            if when is None or recorded >= when:
                when, result = recorded, outcome.result
        out[key] = {
            "time": when.strftime(SHOWN) if when else None,
            "result": word(OUTCOMES, result, lang) if result else None,
            "contacted": contacted,
        }
    return out
