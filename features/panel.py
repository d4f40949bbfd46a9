"""The monthly panel: one row per (customer, month) from opening to the last month of data.

Every feature is a window over this panel, ending at the cutoff row, so nothing after the
cutoff can reach a feature. Events are bucketed by the month-end on or after their date: an
event on the cutoff day belongs to the cutoff month and counts as known; a complaint resolved
after the cutoff is resolved in a later bucket, so at the cutoff it is still open.

Months are handled as integer month numbers (year × 12 + month − 1) and days as epoch days,
so the same expressions run on DuckDB and on Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
from ibis import _

from features.config import BankConfig
from features.sources.files import CUSTOMER_TABLES, TRUTH_TABLE

MATURING_DAYS = 30
MATURING_LATER_DAYS = 90  # a horizon's worth: money that comes up for renewal within it


def month_number(date: ir.DateValue) -> ir.IntegerValue:
    return date.year() * 12 + date.month() - 1


def by_customer(preceding=None, following=0, rows=None) -> ibis.expr.builders.LegacyWindowBuilder:
    """A window over one customer's months, ordered in time."""
    if rows is not None:
        return ibis.window(group_by="customer_id", order_by="month_number", rows=rows)
    return ibis.window(
        group_by="customer_id", order_by="month_number", preceding=preceding, following=following
    )


def rolling_sum(column: ir.NumericColumn, months: int) -> ir.NumericColumn:
    """Sum over the cutoff month and the ``months - 1`` before it."""
    return column.sum().over(by_customer(preceding=months - 1))


def rolling_mean(column: ir.NumericColumn, months: int) -> ir.NumericColumn:
    return column.mean().over(by_customer(preceding=months - 1))


def lag(column: ir.Column, months: int) -> ir.Column:
    return column.lag(months).over(by_customer(preceding=None, following=None))


def lead(column: ir.Column, months: int) -> ir.Column:
    return column.lead(months).over(by_customer(preceding=None, following=None))


def latest(column: ir.Column) -> ir.Column:
    """The largest value up to and including this month (e.g. the last contact date)."""
    return column.max().over(by_customer(preceding=None, following=0))


def safe_ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.FloatingValue:
    """numerator / denominator, null when the denominator is zero or null."""
    return ibis.ifelse(denominator > 0, numerator / denominator, ibis.null("float64"))


@dataclass(frozen=True)
class Warehouse:
    """The input tables as Ibis expressions on one backend."""

    org: ir.Table
    rms: ir.Table
    customers: ir.Table
    rm_assignments: ir.Table
    products: ir.Table
    balances: ir.Table
    transactions: ir.Table
    interactions: ir.Table
    complaints: ir.Table
    truth: ir.Table | None = None

    def batch(self, first_id, last_id) -> Warehouse:
        """The same warehouse restricted to customers with ids in [first_id, last_id].

        A range (not a hash) lets the parquet reader skip row groups by their statistics when
        the tables are laid out by customer, as the synthetic bank's are.
        """
        changes = {
            name: table.filter(table.customer_id.between(first_id, last_id))
            for name, table in self.customer_tables().items()
        }
        return replace(self, **changes)

    def customer_tables(self) -> dict[str, ir.Table]:
        """The tables holding rows of one customer each (the truth too, when present)."""
        names = (*CUSTOMER_TABLES, TRUTH_TABLE)
        return {name: table for name in names if (table := getattr(self, name)) is not None}


def holds(balances: ir.Table) -> ir.BooleanValue:
    """The one definition of holding a product in a month: its balance row is open."""
    return balances.status == "open"


def aum_of(b: ir.Table) -> ir.FloatingValue:
    """A balance row's part of AUM (balances joined to products): what an asset holds."""
    return ibis.ifelse(b.kind == "asset", b.avg_daily_balance, 0.0)


def contribution_of(b: ir.Table) -> ir.FloatingValue:
    """A balance row's contribution in its month (balances joined to products): the margin on
    the average balance, plus the fee while the product is held."""
    return b.avg_daily_balance * b.margin_rate / 12 + ibis.ifelse(
        holds(b), b.fee_per_year / 12, 0.0
    )


def _balances_monthly(
    wh: Warehouse, config: BankConfig, rows_at: tuple[list[int], frozenset[str]] | None = None
) -> ir.Table:
    b = wh.balances.join(wh.products, "product")
    months, only = rows_at if rows_at is not None else ([], frozenset())
    at = b.filter(month_number(b.month).isin(months)) if only else b
    keys = ["customer_id", "month_number"]
    monthly = _by_month(b).aggregate(
        **{k: v for k, v in _balance_aggregates(b, config).items() if k not in only}
    )
    if only:
        row_wise = {k: v for k, v in _balance_aggregates(at, config).items() if k in only}
        monthly = monthly.left_join(_by_month(at).aggregate(**row_wise), keys).drop(
            "customer_id_right", "month_number_right"
        )
    first = wh.balances.month.min().as_scalar()
    first_seen = wh.balances.group_by(["customer_id", "product"]).aggregate(
        first_month=_.month.min()
    )
    opened = (
        first_seen.filter(first_seen.first_month > first)
        .group_by(customer_id=_.customer_id, month_number=month_number(_.first_month))
        .aggregate(products_opened=_.count())
    )
    monthly = monthly.left_join(opened, keys).drop("customer_id_right", "month_number_right")
    due = at if {"maturing_product", "maturing_date"} <= only else b
    return monthly.left_join(_maturing_monthly(due), keys).drop(
        "customer_id_right", "month_number_right"
    )


def _by_month(b: ir.Table):
    return b.group_by(customer_id=b.customer_id, month_number=month_number(b.month))


def _maturing(b: ir.Table) -> tuple[ir.BooleanValue, ir.IntegerValue]:
    """Whether a balance row matures within ``MATURING_DAYS``; its days to maturity."""
    days_to_maturity = b.maturity_date.epoch_days() - b.month.epoch_days()
    return holds(b) & days_to_maturity.between(1, MATURING_DAYS), days_to_maturity


def _balance_aggregates(b: ir.Table, config: BankConfig) -> dict[str, ir.Scalar]:
    """The monthly aggregates of balance rows ``b`` (joined to products)."""
    is_open = holds(b)
    maturing, days_to_maturity = _maturing(b)
    aggregates = {
        "aum": aum_of(b).sum(),
        "products_held": is_open.cast("int64").sum(),
        "contribution_month": contribution_of(b).sum(),
        "maturing": ibis.ifelse(maturing, b.avg_daily_balance, 0.0).sum(),
        "maturing_later": ibis.ifelse(
            is_open & days_to_maturity.between(MATURING_DAYS + 1, MATURING_LATER_DAYS),
            b.avg_daily_balance,
            0.0,
        ).sum(),
        "has_balances": b.customer_id.count(),
    }
    for product in config.product_codes:
        aggregates[f"balance_{product}"] = ibis.ifelse(
            b["product"] == product, b.avg_daily_balance, 0.0
        ).sum()
        aggregates[f"held_{product}"] = (is_open & (b["product"] == product)).cast("int64").max()
    return aggregates


def _maturing_monthly(b: ir.Table) -> ir.Table:
    """What matures within the next 30 days: the largest such product and its first date."""
    due = b.filter(_maturing(b)[0])
    return due.group_by(
        customer_id=due.customer_id, month_number=month_number(due.month)
    ).aggregate(
        maturing_product=due["product"].argmax(due.avg_daily_balance),
        maturing_date=due.maturity_date.min(),
    )


def _transactions_monthly(wh: Warehouse) -> ir.Table:
    t = wh.transactions
    out = t.direction == "out"
    return t.group_by(customer_id=t.customer_id, month_number=month_number(t.ts.date())).aggregate(
        txn_count=_.count(),
        amount_in=ibis.ifelse(~out, t.amount, 0.0).sum(),
        amount_out=ibis.ifelse(out, t.amount, 0.0).sum(),
        out_other_bank=ibis.ifelse(out & (t.counterparty == "other_bank"), t.amount, 0.0).sum(),
        mobile_count=(t.channel == "mobile").cast("int64").sum(),
        salary_count=(t.counterparty == "salary").cast("int64").sum(),
        last_txn_day=t.ts.date().epoch_days().max(),
    )


def _interactions_monthly(wh: Warehouse) -> ir.Table:
    i = wh.interactions
    return i.group_by(customer_id=i.customer_id, month_number=month_number(i.ts.date())).aggregate(
        contacts=_.count(), last_contact_day=i.ts.date().epoch_days().max()
    )


def _complaints_monthly(wh: Warehouse) -> ir.Table:
    c = wh.complaints
    raised = c.group_by(
        customer_id=c.customer_id, month_number=month_number(c.ts.date())
    ).aggregate(complaints_raised=_.count())
    done = c.filter(c.resolved_ts.notnull())
    resolved = done.group_by(
        customer_id=done.customer_id, month_number=month_number(done.resolved_ts.date())
    ).aggregate(
        complaints_resolved=_.count(),
        resolve_days=(done.resolved_ts.date().epoch_days() - done.ts.date().epoch_days()).sum(),
    )
    return raised.outer_join(resolved, ["customer_id", "month_number"]).select(
        customer_id=ibis.coalesce(raised.customer_id, resolved.customer_id),
        month_number=ibis.coalesce(raised.month_number, resolved.month_number),
        complaints_raised=raised.complaints_raised,
        complaints_resolved=resolved.complaints_resolved,
        resolve_days=resolved.resolve_days,
    )


def build_panel(
    wh: Warehouse, config: BankConfig, rows_at: tuple[list[int], frozenset[str]] | None = None
) -> ir.Table:
    """The dense (customer, month) grid with every monthly aggregate, zeros where nothing.

    ``rows_at``: (month numbers, columns) — columns of the balances that are read at the rows
    of those months only (``read_by_windows`` says which no window reads): they are then
    aggregated over those months' balances alone, and are zero (or null) in the others. A
    cutoff's features are the same; the balances' widest aggregate shrinks to a few months.
    """
    months = wh.balances.select(month=wh.balances.month).distinct()
    months = months.mutate(month_number=month_number(months.month))
    customers = wh.customers.join(wh.org, "outlet_id").select(
        "customer_id",
        "outlet_id",
        "sub_branch_id",
        "branch_id",
        "city_tier",
        "birth_date",
        "do_not_contact",
        open_number=month_number(_.open_date),
    )
    grid = customers.cross_join(months).filter(_.month_number >= _.open_number)
    panel = grid
    for part in (
        _balances_monthly(wh, config, rows_at),
        _transactions_monthly(wh),
        _interactions_monthly(wh),
        _complaints_monthly(wh),
    ):
        panel = panel.left_join(part, ["customer_id", "month_number"]).drop(
            "customer_id_right", "month_number_right"
        )
    sparse = ("last_", "maturing_product", "maturing_date")
    counts = [c for c in panel.columns if c not in grid.columns and not c.startswith(sparse)]
    return panel.mutate(**{c: ibis.coalesce(panel[c], 0) for c in counts})


UNBOUNDED = float("inf")


def window_reach(table: ir.Table) -> dict[str, tuple[float, float]]:
    """For every column of ``table``: how many months before and after its own row it reads,
    through every window, lag and lead it depends on, however deeply nested (a 6-month sum of
    a month-on-month drop reads 6 + 1 months back). ``UNBOUNDED`` for windows that start at
    the beginning of the customer's history (``latest``, running sums, row numbers).

    Read from the expressions themselves, so a new feature with a longer window moves the
    months a build must read without anyone updating a constant."""
    memo: dict = {}

    def reach(node) -> tuple[float, float]:
        if node in memo:
            return memo[node]
        if isinstance(node, ops.Field):
            rel = node.rel
            while isinstance(rel, ops.Filter | ops.Sort):
                rel = rel.parent
            found = reach(rel.values[node.name]) if isinstance(rel, ops.Project) else (0, 0)
        elif isinstance(node, ops.WindowFunction):
            back, ahead = _frame(node)
            inner = [reach(arg) for arg in _children(node.func)]
            found = (
                back + max((b for b, _ in inner), default=0),
                ahead + max((a for _, a in inner), default=0),
            )
        else:
            inner = [reach(arg) for arg in _children(node)]
            found = (max((b for b, _ in inner), default=0), max((a for _, a in inner), default=0))
        memo[node] = found
        return found

    values = table.op().values if isinstance(table.op(), ops.Project) else {}
    return {name: reach(table[name].op()) for name in table.columns if name in values} | {
        name: (0, 0) for name in table.columns if name not in values
    }


def read_by_windows(table: ir.Table) -> set[str]:
    """The columns of the tables under ``table`` that some window reads, at rows other than
    its own: directly, or through a column computed from them (a 6-month count of AUM drops
    reads AUM). The others are read at their own row only."""
    found: set[str] = set()
    for project in table.op().find(ops.Project):
        for value in project.values.values():
            for window in _windows_in(value):
                for field in window.find(ops.Field, filter=ops.Value):
                    found |= _base_columns(field)
    return found


def _windows_in(value: ops.Value) -> list[ops.WindowFunction]:
    return value.find(ops.WindowFunction, filter=ops.Value)


def _base_columns(field: ops.Field) -> set[str]:
    """The columns of the underlying tables that ``field`` is computed from."""
    rel = field.rel
    while isinstance(rel, ops.Filter | ops.Sort):
        rel = rel.parent
    if not isinstance(rel, ops.Project):
        return {field.name}
    fields = rel.values[field.name].find(ops.Field, filter=ops.Value)
    return set().union(*(_base_columns(f) for f in fields)) if fields else set()


def _frame(window: ops.WindowFunction) -> tuple[float, float]:
    """Months before and after the row that one window function reads."""
    func = window.func
    if isinstance(func, ops.Lag | ops.Lead):
        offset = func.offset.value if func.offset is not None else 1
        return (offset, 0) if isinstance(func, ops.Lag) else (0, offset)
    if isinstance(func, ops.RowNumber):  # counts the rows before it, whatever the frame
        return UNBOUNDED, 0
    if window.start is None:
        return UNBOUNDED, _bound(window.end, following=True)
    return _bound(window.start, following=False), _bound(window.end, following=True)


def _bound(boundary, following: bool) -> float:
    """Distance of a frame boundary in the given direction (0 if it lies the other way)."""
    if boundary is None:
        return UNBOUNDED
    value = boundary.value.value
    if boundary.preceding:
        return 0 if following else value
    return value if following else 0


def _children(node) -> list:
    out = []
    for arg in node.__args__:
        items = arg if isinstance(arg, tuple) else (arg,)
        out.extend(item for item in items if isinstance(item, ops.Value))
    return out
