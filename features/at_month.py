"""Windows evaluated at one month only: each window as an aggregate over the customer's months.

The features are windows over the monthly panel (``features.panel``), evaluated on every row
of it. A build for one cutoff needs one row per customer, yet a window operator computes all
of them — some 25 months per customer for each of ~50 windows. At one month, a window over
the rows ``k`` before to ``j`` after is an aggregate over the customer's months ``month - k``
to ``month + j`` (the panel has one row per month from opening, so rows are months), and
``lag(x, k)`` is ``x`` in month ``month - k``. One grouped aggregate with a condition per
window replaces them all: same values (sums may add in another order: the last bits of a
float), a fraction of the work.
"""

from __future__ import annotations

import ibis.expr.operations as ops
import ibis.expr.types as ir
from ibis.expr.operations.reductions import Filterable

CUSTOMER, MONTH = "customer_id", "month_number"


def at_month(table: ir.Table, month: int) -> ir.Table | None:
    """The rows of ``table`` whose ``month_number`` is ``month``, with its windows computed
    as aggregates; None when a window is not one this can rewrite (then compute it as is).

    ``table`` is a projection whose windows are all by customer, ordered by month (rows
    frames, ``features.panel.by_customer``), over a parent with one row per customer and
    month and no gaps. The windows of the parent itself stay windows (they feed the
    aggregates, month by month); the parent's row at ``month`` is rewritten the same way.
    """
    node = table.op()
    if not isinstance(node, ops.Project):
        return None
    parent = node.parent
    windows = list(dict.fromkeys(w for v in node.values.values() for w in topmost_windows(v)))
    if not windows:
        return _rows_at(parent, month).select(**_rebased(node, parent, _rows_at(parent, month)))
    names = {w: f"_at_month_{i}" for i, w in enumerate(windows)}
    aggregates = {}
    for window in windows:
        aggregate = _as_aggregate(window, parent, month)
        if aggregate is None:
            return None
        aggregates[names[window]] = aggregate.to_expr()
    rows = parent.to_expr()
    computed = rows.group_by(CUSTOMER).aggregate(**aggregates)
    here = _rows_at(parent, month)
    joined = here.join(computed, CUSTOMER).select(*here.columns, *names.values()).op()
    mapping = {w: ops.Field(joined, name) for w, name in names.items()}
    mapping |= {ops.Field(parent, c): ops.Field(joined, c) for c in parent.schema.names}
    values = {name: value.replace(mapping).to_expr() for name, value in node.values.items()}
    return joined.to_expr().select(**values)


def _rows_at(parent: ops.Relation, month: int) -> ir.Table:
    """The parent's rows at ``month``: rewritten too when the parent computes windows."""
    rewritten = at_month(parent.to_expr(), month) if _has_windows(parent) else None
    if rewritten is not None:
        return rewritten
    rows = parent.to_expr()
    return rows.filter(rows[MONTH] == month)


def _rebased(node: ops.Project, parent: ops.Relation, rows: ir.Table) -> dict:
    mapping = {ops.Field(parent, c): ops.Field(rows.op(), c) for c in parent.schema.names}
    return {name: value.replace(mapping).to_expr() for name, value in node.values.items()}


def _has_windows(node: ops.Relation) -> bool:
    return isinstance(node, ops.Project) and any(topmost_windows(v) for v in node.values.values())


def topmost_windows(value: ops.Value) -> list[ops.WindowFunction]:
    """The window functions in ``value``, not looking into the relations its fields read."""
    found, queue = [], [value]
    while queue:
        node = queue.pop()
        if isinstance(node, ops.WindowFunction):
            found.append(node)
        elif isinstance(node, ops.Value) and not isinstance(node, ops.Field):
            queue.extend(node.__children__)
    return found


def _as_aggregate(window: ops.WindowFunction, parent: ops.Relation, month: int):
    """``window`` at the row of ``month`` as a conditional aggregate over ``parent``'s rows
    of one customer, or None when it is not a window by customer ordered by month."""
    months = ops.Field(parent, MONTH)
    if (
        window.how != "rows"
        or tuple(window.group_by) != (ops.Field(parent, CUSTOMER),)
        or len(window.order_by) != 1
        or window.order_by[0].arg != months
        or not window.order_by[0].ascending
    ):
        return None
    func, months = window.func, months.to_expr()
    if isinstance(func, ops.Lag | ops.Lead):
        if func.default is not None:
            return None
        offset = func.offset.value if func.offset is not None else 1
        source = month - offset if isinstance(func, ops.Lag) else month + offset
        return ops.Arbitrary(func.arg, where=(months == source).op())
    if not isinstance(func, Filterable) or not isinstance(func, ops.Reduction):
        return None  # row numbers, ranks…: not needed by any feature
    conditions = [months >= month + _offset(window.start)] if window.start is not None else []
    if window.end is not None:
        conditions.append(months <= month + _offset(window.end))
    if func.where is not None:
        conditions.append(func.where.to_expr())
    if not conditions:
        return func
    where = conditions[0]
    for condition in conditions[1:]:
        where = where & condition
    return func.copy(where=where.op())


def _offset(boundary: ops.WindowBoundary) -> int:
    """Months from the row to a frame boundary: negative before it."""
    value = boundary.value.value
    return -value if boundary.preceding else value
