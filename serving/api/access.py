"""Who may see what, and the one audit writer — for the API and the RM page alike (DESIGN §8).

An ``rm`` key sees the customers of its own book (the RM who looks after them as of the
scored cutoff) and pulls only its own lists; ``crm`` and ``admin`` keys see every customer and
every list. A customer the snapshot does not hold is outside every RM's book, so an RM cannot
tell an unknown id from somebody else's customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from serving.api.auth import ApiKey, AuditLog


@dataclass(frozen=True)
class Reach:
    """What a key may do with one asked-for customer id."""

    customer: Any  # the id as the snapshot keeps it, or None when it cannot be one of them
    owner: str | None  # the customer's RM as of the cutoff
    exists: bool  # the snapshot holds the customer
    allowed: bool  # the key may see it


def reach(key: ApiKey, snapshot, customer_id) -> Reach:
    """Whether ``key`` may see ``customer_id`` of ``snapshot`` (a ``Snapshot``)."""
    wanted = snapshot.key(customer_id)
    exists = wanted is not None and wanted in snapshot.scores.index
    owner = snapshot.owner(wanted) if exists else None
    allowed = key.role != "rm" or (owner is not None and owner == key.rm_id)
    return Reach(wanted, owner, exists, allowed)


def reaches_all(key: ApiKey, snapshot, customer_ids: list) -> bool:
    """Whether ``key`` may see every one of ``customer_ids`` (ids as the snapshot keeps them;
    an id the snapshot does not hold is outside every book)."""
    if key.role != "rm":
        return True
    if snapshot is None:
        return False
    owners = snapshot.rm_ids.reindex(customer_ids)
    return bool((owners == key.rm_id).fillna(False).all())


def may_pull_list(key: ApiKey, list_id: str | None) -> bool:
    """Whether ``key`` may read the list of ``list_id`` (an RM its own only)."""
    return key.role != "rm" or list_id == key.rm_id


def audit(
    log: AuditLog,
    key: ApiKey,
    endpoint: str,
    request_id: str,
    status: int = 200,
    customers: int = 0,
    models: dict[str, str] | None = None,
    **extra,
) -> None:
    """The one audit line of a request, API or page: who (key name, role, RM book), what
    (endpoint, how many customers, which models), the outcome and the request id."""
    log.write(
        key=key.name,
        role=key.role,
        endpoint=endpoint,
        rm_book=key.rm_id,
        customers=customers,
        models=models,
        request_id=request_id,
        status=status,
        **{k: v for k, v in extra.items() if not (isinstance(v, float) and pd.isna(v))},
    )
