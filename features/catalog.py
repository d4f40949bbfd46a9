"""Every model feature in one table: labels, reason texts, direction, drivers (docs/design.md §6).

Reason templates are phrased for the direction that *raises* churn risk, because an RM reads
them as "why this customer may leave". They are ``str.format`` templates with one ``{value}``
placeholder, rendered by :meth:`Feature.reason`; a value an RM would otherwise have to work out
has a text of its own (:class:`Case`: "No money paid in for 3 months", not "Only CNY 0 paid in
over 3 months"; "Paid other banks more than their AUM", not "114% of AUM"). A feature that can
say why a *growth* offer fits has a second text (:class:`Growth`, rendered by
:meth:`Feature.growth_reason`) for the values that make an offer fit ("AUM up 12% over 3
months", "CNY 50,000 matures within 30 days: money to place"); a balance on its own, a tier or
a risk fact is never a growth reason. Templates understand two specs besides the usual ones
(``.0%``, ``.0f``):

- ``{value:money}``: CNY, "¥1.2万" in zh (万 from 10,000, 亿 from 100 million), "CNY 12,000" in en;
- ``{value:when true|when false}``: a boolean picks one of two texts.

Every entry also carries the range its values can take (``minimum``, ``maximum``; flags 0/1),
as the feature table defines them: amounts are never negative, a relative change never falls
below -1 (money cannot fall by more than all of it), true shares lie in [0, 1], counts are
whole and never negative, and the tier level stays within the bank's ladder. The API refuses a
feature record outside them (serving/api/schemas.py), and its spec declares them.

Nothing here does work at import time; :func:`catalog` builds the entries on first call.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from features.config import Product, TierLadder

CATALOG_VERSION = "2"

DOMAINS = ("contribution", "tiers", "loyalty", "activity", "satisfaction", "lifecycle")
DTYPES = ("float64", "int64", "bool")
LANGUAGES = ("zh", "en")
# The synthetic bank's truth drivers that a feature can evidence; the reasons-vs-truth
# benchmark maps shown reasons back to them. Their one home: the simulator
# (synthetic/dynamics.py) codes a driver by its position here, so this order fixes the bank.
DRIVERS = (
    "balance_decline",
    "outflow_other_bank",
    "salary_loss",
    "complaint",
    "rm_neglect",
    "maturity",
)
NO_DRIVER = "none"  # the truth's churn_driver of an exit no driver contributed to
REASON_VALUES: dict[str, Callable[[float], float]] = {"negate": lambda v: -v, "abs": abs}

# English plurals after a count of exactly one: "1 months" reads as a bug to an RM.
_EN_SINGULAR = re.compile(
    r"(?<![\d.,])1 (month|day|time|product|complaint|contact|transaction|credit)s\b"
)
_NEGATIVE_ZERO = re.compile(r"-(?=[0.,]*%?$)")

# Ranges shared by many entries (keyword arguments of Feature). Balances and flows come from
# warehouse amounts that are never negative (features/schema.py), so every amount is >= 0.
AMOUNT = {"minimum": 0.0}
COUNT = {"minimum": 0}  # counts, and months or days since something
SHARE = {"minimum": 0.0, "maximum": 1.0}  # a part of a whole
RATIO = {"minimum": 0.0}  # an amount over another it is no part of (outflows, maturing over AUM)
CHANGE = {"minimum": -1.0}  # relative: (now - then) / then, with both >= 0
# pyramid levels: one per scope of features/tiers.py PYRAMID_SCOPES (not imported: that module
# brings ibis, and the catalog is read by the serving side); city tiers as the org table's check
PYRAMID_LEVELS = 4
CITY_TIERS = (1, 4)


@dataclass(frozen=True)
class Case:
    """A text of its own for the shown values in [``low``, ``high``] (bounds included; None:
    unbounded), used instead of the template; it may hold ``{value}`` or not."""

    low: float | None
    high: float | None
    zh: str
    en: str

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def zero(zh: str, en: str) -> Case:
    """The text for nothing at all (a count of 0, an amount under half a yuan)."""
    return Case(None, 0.5, zh, en)


GROWTH_WHEN = ("up", "down", "true", "false", "any")


@dataclass(frozen=True)
class Growth:
    """Why a growth offer fits, said for the values that make it fit: ``when`` "up" (above
    0), "down" (below 0; shown without its sign), "true", "false" (a flag) or "any"."""

    zh: str
    en: str
    when: str = "up"

    def fits(self, values: np.ndarray) -> np.ndarray:
        """Element-wise: whether each value (NaN: missing) is one this text speaks for."""
        values = np.asarray(values, dtype=np.float64)
        known = ~np.isnan(values)
        return (
            known
            & {
                "up": values > 0,
                "down": values < 0,
                "true": values == 1,
                "false": values == 0,
                "any": known,
            }[self.when]
        )


@dataclass(frozen=True)
class Feature:
    """One model feature and how to explain it to a relationship manager.

    Parameters
    ----------
    name : column name in the feature table.
    domain : one of ``DOMAINS``.
    dtype : "float64", "int64" or "bool".
    label_zh, label_en : short human labels.
    reason_zh, reason_en : reason templates with one ``{value}`` placeholder, phrased for the
        direction that raises churn risk.
    direction : +1 if a high value raises churn risk, -1 if it lowers it, 0 if ambiguous.
    actionable : whether an RM can do something about it.
    sensitive : demographic; may be a model input but is never shown as a reason.
    driver : the truth driver (one of ``DRIVERS``) this feature evidences, or None.
    reason_group : features expressing one cause share a group and become one reason;
        defaults to ``name``.
    reason_value : applied to the value before formatting, so a fall of -0.35 reads
        "down 35%": "negate", "abs" or a callable; None leaves the value as it is.
    minimum, maximum : the values the feature can take, bounds included (None: unbounded);
        a flag ("bool") is 0..1. Values of "int64" and "bool" features are whole numbers.
    cases : texts of their own for some shown values (:class:`Case`), checked in order.
    growth : why a growth offer fits (:class:`Growth`), or None: never a growth reason.
    """

    name: str
    domain: str
    dtype: str
    label_zh: str
    label_en: str
    reason_zh: str
    reason_en: str
    direction: int
    actionable: bool
    sensitive: bool = False
    driver: str | None = None
    reason_group: str | None = None
    reason_value: str | Callable[[float], float] | None = None
    minimum: float | None = None
    maximum: float | None = None
    cases: tuple[Case, ...] = ()
    growth: Growth | None = None

    def __post_init__(self) -> None:
        if self.dtype == "bool":
            object.__setattr__(self, "minimum", 0)
            object.__setattr__(self, "maximum", 1)
        problems = []
        if None not in (self.minimum, self.maximum) and self.minimum > self.maximum:
            problems.append(f"minimum {self.minimum} is above maximum {self.maximum}")
        if self.domain not in DOMAINS:
            problems.append(f"domain {self.domain!r} is not one of {DOMAINS}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype {self.dtype!r} is not one of {DTYPES}")
        if self.direction not in (-1, 0, 1):
            problems.append(f"direction {self.direction!r} must be -1, 0 or +1")
        if self.driver is not None and self.driver not in DRIVERS:
            problems.append(f"driver {self.driver!r} is not one of {DRIVERS} or None")
        if isinstance(self.reason_value, str) and self.reason_value not in REASON_VALUES:
            problems.append(
                f"reason_value {self.reason_value!r} is not one of {sorted(REASON_VALUES)}"
            )
        for lang, template in (("zh", self.reason_zh), ("en", self.reason_en)):
            fields = _fields(template)
            if fields != ["value"]:
                problems.append(
                    f"reason_{lang} {template!r} must have exactly one {{value}} placeholder, "
                    f"found {fields}"
                )
        extra = [(f"case {c.low}..{c.high}", c.zh, c.en) for c in self.cases]
        if self.growth is not None:
            extra.append(("growth", self.growth.zh, self.growth.en))
            if self.growth.when not in GROWTH_WHEN:
                problems.append(f"growth when {self.growth.when!r} is not one of {GROWTH_WHEN}")
        for what, *texts in extra:
            for text in texts:
                if _fields(text) not in ([], ["value"]):
                    problems.append(f"{what} text {text!r} may hold one {{value}}, no other field")
        if problems:
            raise ValueError(f"catalog entry {self.name!r}: " + "; ".join(problems))
        if self.reason_group is None:
            object.__setattr__(self, "reason_group", self.name)

    @property
    def whole(self) -> bool:
        """Whether the values are whole numbers (counts, levels, flags)."""
        return self.dtype in ("int64", "bool")

    def admits(self, value: float) -> bool:
        """Whether a finite number is one this feature can take (a flag: 0 or 1, or a bool)."""
        if self.whole and not float(value).is_integer():
            return False
        return (self.minimum is None or value >= self.minimum) and (
            self.maximum is None or value <= self.maximum
        )

    def allowed(self) -> str:
        """The values this feature can take, in words: "a whole number from 0 to 5"."""
        if self.dtype == "bool":
            return "true or false (or 1 or 0)"
        kind = "a whole number" if self.whole else "a number"
        low, high = (_plain(b) for b in (self.minimum, self.maximum))
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} from {low} to {high}"
        if self.minimum is not None:
            return f"{kind} of at least {low}"
        if self.maximum is not None:
            return f"{kind} of at most {high}"
        return kind

    def label(self, lang: str) -> str:
        """The short label in ``lang`` ("zh" or "en")."""
        _check_language(lang)
        return self.label_zh if lang == "zh" else self.label_en

    def reason(self, value: Any, lang: str) -> str:
        """Render the reason text for ``value`` in ``lang`` ("zh" or "en").

        A missing or infinite value renders as "<label>：无数据" / "<label>: no data", never
        "nan". When ``reason_value`` is set and the value points away from risk (AUM up, not
        down), the text states the signed value plainly: "AUM change, 3 months: +12%".
        """
        _check_language(lang)
        separator = "：" if lang == "zh" else ": "
        number = _as_number(value)
        if number is None:
            return self.label(lang) + separator + ("无数据" if lang == "zh" else "no data")
        template = self.reason_zh if lang == "zh" else self.reason_en
        transform = self.reason_value
        if isinstance(transform, str):
            transform = REASON_VALUES[transform]
        if transform is not None and not isinstance(number, bool):
            shown = transform(number) + 0.0  # + 0.0 turns -0.0 into 0.0
            if shown < 0:
                spec = _signed(_value_spec(template))
                return self.label(lang) + separator + format(_Value(number, lang), spec)
            number = shown
        case = next(
            (c for c in self.cases if not isinstance(number, bool) and c.holds(number)), None
        )
        if case is not None:
            template = case.zh if lang == "zh" else case.en
        return _rendered(template, number, lang)

    def growth_reason(self, value: Any, lang: str) -> str | None:
        """Why a growth offer fits, for ``value`` in ``lang``; None when this feature is never a
        growth reason or its value is not one that makes an offer fit."""
        _check_language(lang)
        number = _as_number(value)
        if self.growth is None or number is None or not self.growth.fits([float(number)])[0]:
            return None
        template = self.growth.zh if lang == "zh" else self.growth.en
        shown = abs(number) if self.growth.when == "down" else number
        return _rendered(template, shown, lang)


def _rendered(template: str, number: float | bool, lang: str) -> str:
    text = template.format(value=_Value(number, lang))
    return text if lang == "zh" else _EN_SINGULAR.sub(r"1 \1", text)


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


class _Value:
    """A value that formats itself with the catalog's specs (see the module docstring)."""

    def __init__(self, value: float | bool, lang: str) -> None:
        self.value = value
        self.lang = lang

    def __format__(self, spec: str) -> str:
        if "|" in spec:
            when_true, when_false = spec.split("|", 1)
            return when_true if self.value else when_false
        if spec == "money":
            return _money_zh(self.value) if self.lang == "zh" else _money_en(self.value)
        return _NEGATIVE_ZERO.sub("", format(float(self.value), spec), count=1)


def _plain(bound: float | None) -> str:
    """A bound as a reader writes it: 0, not 0.0."""
    return "" if bound is None else f"{bound:g}"


def _value_spec(template: str) -> str:
    return next(spec for _, name, spec, _ in string.Formatter().parse(template) if name)


def _signed(spec: str) -> str:
    """``spec`` with an explicit sign for plain numbers, so a rise reads "+12%"."""
    if spec == "money" or "|" in spec or spec[:1] in ("+", "-", " "):
        return spec
    return "+" + spec


def _as_number(value: Any) -> float | bool | None:
    """The value as bool or finite float; None when missing (None, NaN, pd.NA) or infinite."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _money_zh(amount: float) -> str:
    sign = "-" if round(amount) < 0 else ""
    amount = abs(amount)
    if round(amount / 1e4, 1) >= 1e4:
        text = _trim_zeros(f"{amount / 1e8:,.2f}") + "亿"
    elif round(amount) >= 1e4:
        text = _trim_zeros(f"{amount / 1e4:,.1f}") + "万"
    else:
        text = f"{amount:,.0f}"
    return f"{sign}¥{text}"


def _money_en(amount: float) -> str:
    return f"CNY {round(amount):,}"


def _trim_zeros(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not supported; use one of {LANGUAGES}")


# One entry per feature, in the order of the feature table. Columns: name, domain, dtype,
# label zh/en, reason zh/en (risky direction), then direction, actionable and the rest by name;
# ``growth`` (why an offer fits) only where the feature can say so in an RM's words.
# ``top_tier`` is the highest tier level of the bank's ladder; a customer holds at most one
# balance row per product, so at most ``len(products)`` products (unbounded when not given).
# fmt: off
def _entries(products: tuple[Product, ...], top_tier: int) -> list[Feature]:
    c, t, lo, a, s, li = DOMAINS  # contribution, tiers, loyalty, activity, satisfaction, lifecycle
    held = len(products) or None
    G = Growth
    return [
        Feature("aum_avg_1m", c, "float64", "本月日均资产", "AUM this month",
                "本月日均资产{value:money}", "Average AUM this month {value:money}",
                direction=0, actionable=False,
                driver="balance_decline", reason_group="assets_falling", **AMOUNT,
                growth=G("有{value:money}资产可配置", "Has {value:money} in assets to invest")),
        Feature("aum_avg_3m", c, "float64", "近3个月日均资产", "AUM, 3-month average",
                "近3个月日均资产{value:money}", "Average AUM over 3 months {value:money}",
                direction=0, actionable=False,
                driver="balance_decline", reason_group="assets_falling", **AMOUNT,
                growth=G("有{value:money}资产可配置", "Has {value:money} in assets to invest")),
        Feature("aum_avg_12m", c, "float64", "近12个月日均资产", "AUM, 12-month average",
                "近12个月日均资产{value:money}", "Average AUM over 12 months {value:money}",
                direction=0, actionable=False,
                driver="balance_decline", reason_group="assets_falling", **AMOUNT),
        Feature("aum_change_1m", c, "float64", "本月资产变化", "AUM change, this month",
                "本月资产下降{value:.0%}", "AUM down {value:.0%} this month",
                direction=-1, actionable=True, reason_value="negate",
                driver="balance_decline", reason_group="assets_falling", **CHANGE,
                growth=G("本月资产增长{value:.0%}", "AUM up {value:.0%} this month")),
        Feature("aum_vs_prev_3m", c, "float64", "本月资产较前3个月",
                "AUM against the 3 months before",
                "本月资产较前3个月均值下降{value:.0%}",
                "AUM {value:.0%} below the average of the 3 months before",
                direction=-1, actionable=True, reason_value="negate",
                driver="balance_decline", reason_group="assets_falling", **CHANGE,
                growth=G("本月资产比前3个月均值多{value:.0%}",
                         "AUM {value:.0%} above the average of the 3 months before")),
        Feature("aum_change_3m", c, "float64", "近3个月资产变化", "AUM change, 3 months",
                "近3个月资产下降{value:.0%}", "AUM down {value:.0%} over the last 3 months",
                direction=-1, actionable=True, reason_value="negate",
                driver="balance_decline", reason_group="assets_falling", **CHANGE,
                growth=G("近3个月资产增长{value:.0%}",
                         "AUM up {value:.0%} over the last 3 months")),
        Feature("aum_change_6m", c, "float64", "近6个月资产变化", "AUM change, 6 months",
                "近6个月资产下降{value:.0%}", "AUM down {value:.0%} over 6 months",
                direction=-1, actionable=True, reason_value="negate",
                driver="balance_decline", reason_group="assets_falling", **CHANGE,
                growth=G("近6个月资产增长{value:.0%}", "AUM up {value:.0%} over 6 months")),
        Feature("aum_drop_months_6m", c, "int64", "近6个月资产下降月数",
                "Months with an AUM drop, 6 months",
                "近6个月有{value:.0f}个月资产明显下降",
                "AUM fell sharply in {value:.0f} of the last 6 months",
                direction=1, actionable=True,
                driver="balance_decline", reason_group="assets_falling", minimum=0, maximum=6),
        Feature("months_since_aum_drop", c, "float64", "距上次资产下降月数",
                "Months since an AUM drop",
                "{value:.0f}个月前资产明显下降", "AUM fell sharply {value:.0f} months ago",
                direction=0, actionable=False,
                driver="balance_decline", reason_group="assets_falling", **COUNT),
        Feature("aum_slope_6m", c, "float64", "近6个月资产趋势", "AUM trend, 6 months",
                "近6个月资产每月下降约{value:.1%}",
                "AUM falling about {value:.1%} a month over 6 months",
                direction=-1, actionable=True, reason_value="negate",
                driver="balance_decline", reason_group="assets_falling", minimum=-1.0, maximum=1.0,
                growth=G("近6个月资产每月增长约{value:.1%}",
                         "AUM growing about {value:.1%} a month over 6 months")),
        *(_balance(product) for product in products),
        Feature("contribution_12m", c, "float64", "年贡献度", "Annual contribution",
                "年贡献度{value:money}", "Brings the bank {value:money} a year",
                direction=0, actionable=False, **AMOUNT),
        Feature("contribution_share_outlet", c, "float64", "占网点贡献比例",
                "Share of outlet contribution",
                "贡献占网点{value:.2%}", "{value:.2%} of the outlet's contribution",
                direction=0, actionable=False, **SHARE),

        Feature("tier_level", t, "int64", "客户等级", "Tier level",
                "客户等级{value:.0f}级", "Tier level {value:.0f}",
                direction=0, actionable=False, minimum=0, maximum=top_tier),
        Feature("pyramid_level", t, "int64", "金字塔层级", "Pyramid level",
                "金字塔层级{value:.0f}", "Pyramid level {value:.0f}",
                direction=0, actionable=False, minimum=0, maximum=PYRAMID_LEVELS),
        Feature("months_in_tier", t, "int64", "当前等级持续月数", "Months in current tier",
                "当前等级仅维持{value:.0f}个月", "Only {value:.0f} months in the current tier",
                direction=-1, actionable=False, **COUNT),
        Feature("tier_downgrades_12m", t, "int64", "近12个月降级次数", "Tier drops, 12 months",
                "近12个月客户等级下降{value:.0f}次", "Tier dropped {value:.0f} times in 12 months",
                direction=1, actionable=True, minimum=0, maximum=12),

        Feature("tenure_months", lo, "int64", "开户月数", "Tenure (months)",
                "开户仅{value:.0f}个月", "Customer for only {value:.0f} months",
                direction=-1, actionable=False, **COUNT,
                growth=G("已在本行开户{value:.0f}个月", "A customer for {value:.0f} months")),
        Feature("products_held", lo, "int64", "持有产品数", "Products held",
                "仅持有{value:.0f}种产品", "Holds only {value:.0f} products",
                direction=-1, actionable=True, minimum=0, maximum=held,
                cases=(zero("未持有任何产品", "Holds no product"),),
                growth=G("已持有{value:.0f}种产品", "Already holds {value:.0f} products")),
        Feature("product_breadth_change_6m", lo, "int64", "近6个月产品数变化",
                "Change in products held, 6 months",
                "近6个月减少{value:.0f}种产品", "Dropped {value:.0f} products in 6 months",
                direction=-1, actionable=True, reason_value="negate",
                minimum=None if held is None else -held, maximum=held,
                growth=G("近6个月新增{value:.0f}种产品",
                         "Took up {value:.0f} more products in 6 months")),
        Feature("salary_credit_3m", lo, "int64", "近3个月代发工资次数", "Salary credits, 3 months",
                "近3个月代发工资仅入账{value:.0f}次",
                "Salary credited only {value:.0f} times in the last 3 months",
                direction=-1, actionable=True, driver="salary_loss", reason_group="salary",
                **COUNT,
                cases=(zero("近3个月无代发工资入账", "No salary credited in the last 3 months"),),
                growth=G("近3个月代发工资入账{value:.0f}次",
                         "Salary paid in here {value:.0f} times in the last 3 months")),
        Feature("salary_credit_prev_3m", lo, "int64", "前3个月代发工资次数",
                "Salary credits, the 3 months before",
                "此前3个月代发工资{value:.0f}次",
                "{value:.0f} salary credits in the 3 months before",
                direction=0, actionable=False, driver="salary_loss", reason_group="salary",
                **COUNT),
        Feature("months_since_salary_credit", lo, "float64", "距上次代发工资月数",
                "Months since the last salary credit",
                "已{value:.0f}个月无代发工资入账", "No salary credited for {value:.0f} months",
                direction=1, actionable=True, driver="salary_loss", reason_group="salary", **COUNT),
        Feature("salary_credit_lost", lo, "bool", "代发工资中断", "Salary credits stopped",
                "{value:近3个月代发工资中断|代发工资正常入账}",
                "{value:Salary credits stopped in the last 3 months|Salary credits continue}",
                direction=1, actionable=True, driver="salary_loss", reason_group="salary",
                growth=G("代发工资按月入账", "Salary paid in here every month", when="false")),
        Feature("months_since_last_product_open", lo, "float64", "距上次开立产品月数",
                "Months since last new product",
                "已{value:.0f}个月未开立新产品", "No new product for {value:.0f} months",
                direction=1, actionable=True, **COUNT),
        Feature("rm_assigned", lo, "bool", "已分配客户经理", "Has an RM",
                "{value:已分配客户经理|未分配客户经理}",
                "{value:Has an assigned RM|No assigned RM}",
                direction=-1, actionable=True, driver="rm_neglect", reason_group="rm_contact"),
        Feature("rm_contacts_3m", lo, "int64", "近3个月客户经理联系次数", "RM contacts, 3 months",
                "近3个月客户经理仅联系{value:.0f}次",
                "RM in touch only {value:.0f} times in the last 3 months",
                direction=-1, actionable=True, driver="rm_neglect", reason_group="rm_contact",
                **COUNT,
                cases=(zero("近3个月客户经理未联系", "No RM contact in the last 3 months"),),
                growth=G("近3个月与客户经理联系{value:.0f}次",
                         "In touch with the RM {value:.0f} times in the last 3 months")),
        Feature("days_since_rm_contact", lo, "float64", "距上次客户经理联系天数",
                "Days since RM contact",
                "客户经理已{value:.0f}天未联系", "No RM contact for {value:.0f} days",
                direction=1, actionable=True, driver="rm_neglect", reason_group="rm_contact",
                **COUNT),

        Feature("txn_count_1m", a, "int64", "本月交易笔数", "Transactions this month",
                "本月仅{value:.0f}笔交易", "Only {value:.0f} transactions this month",
                direction=-1, actionable=True, reason_group="activity", **COUNT,
                cases=(zero("本月没有交易", "No transactions this month"),),
                growth=G("本月交易{value:.0f}笔，账户活跃",
                         "{value:.0f} transactions this month: an active customer")),
        Feature("txn_count_3m", a, "int64", "近3个月交易笔数", "Transactions, 3 months",
                "近3个月仅{value:.0f}笔交易", "Only {value:.0f} transactions in the last 3 months",
                direction=-1, actionable=True, reason_group="activity", **COUNT,
                cases=(zero("近3个月没有交易", "No transactions in the last 3 months"),),
                growth=G("近3个月交易{value:.0f}笔，账户活跃",
                         "{value:.0f} transactions in the last 3 months: an active customer")),
        Feature("txn_amount_in_3m", a, "float64", "近3个月资金流入", "Money in, 3 months",
                "近3个月资金流入仅{value:money}", "Only {value:money} paid in over 3 months",
                direction=-1, actionable=True, reason_group="activity", **AMOUNT,
                cases=(zero("近3个月没有资金流入", "No money paid in for 3 months"),),
                growth=G("近3个月流入资金{value:money}，有钱可配置",
                         "{value:money} paid in over 3 months: money to place")),
        Feature("txn_amount_out_3m", a, "float64", "近3个月资金流出", "Money out, 3 months",
                "近3个月资金流出{value:money}", "{value:money} paid out over 3 months",
                direction=1, actionable=True,
                driver="outflow_other_bank", reason_group="outflow", **AMOUNT),
        Feature("outflow_to_other_banks_share_3m", a, "float64", "近3个月转他行占比",
                "Share of outflows to other banks, 3 months",
                "近3个月{value:.0%}的转出资金流向他行",
                "{value:.0%} of outgoing money went to other banks in 3 months",
                direction=1, actionable=True,
                driver="outflow_other_bank", reason_group="outflow", **SHARE,
                cases=(Case(0.995, None, "近3个月转出资金全部流向他行",
                            "All outgoing money went to other banks in 3 months"),)),
        Feature("outflow_to_other_banks_1m", a, "float64", "本月转他行金额",
                "Paid to other banks this month",
                "本月转出他行{value:money}", "{value:money} paid to other banks this month",
                direction=1, actionable=True,
                driver="outflow_other_bank", reason_group="outflow", **AMOUNT),
        Feature("outflow_to_other_banks_to_aum_3m", a, "float64", "近3个月转他行占资产比例",
                "Paid to other banks, share of AUM, 3 months",
                "近3个月转出他行的金额相当于资产的{value:.0%}",
                "Paid other banks {value:.0%} of AUM in 3 months",
                direction=1, actionable=True,
                driver="outflow_other_bank", reason_group="outflow", **RATIO,
                cases=(Case(1.0, None, "近3个月转出他行的金额超过其全部资产",
                            "Paid other banks more than their AUM in 3 months"),
                       Case(0.5, 1.0, "近3个月转出他行的金额超过资产的一半",
                            "Paid other banks over half their AUM in 3 months"))),
        Feature("mobile_share_3m", a, "float64", "近3个月手机银行占比", "Mobile share, 3 months",
                "手机银行交易占比{value:.0%}", "{value:.0%} of transactions on mobile",
                direction=0, actionable=False, reason_group="activity", **SHARE,
                growth=G("常用手机银行（{value:.0%}的交易）",
                         "Banks on mobile ({value:.0%} of transactions)")),
        Feature("activity_change_3m", a, "float64", "近3个月交易变化", "Activity change, 3 months",
                "近3个月交易笔数较前3个月下降{value:.0%}",
                "Transactions down {value:.0%} on the previous 3 months",
                direction=-1, actionable=True, reason_value="negate", reason_group="activity",
                **CHANGE,
                growth=G("近3个月交易笔数较前3个月增长{value:.0%}",
                         "Transactions up {value:.0%} on the previous 3 months")),
        Feature("days_since_last_txn", a, "float64", "距上次交易天数",
                "Days since last transaction",
                "已{value:.0f}天无交易", "No transactions for {value:.0f} days",
                direction=1, actionable=True, reason_group="activity", **COUNT),

        Feature("complaints_12m", s, "int64", "近12个月投诉次数", "Complaints, 12 months",
                "近12个月投诉{value:.0f}次", "{value:.0f} complaints in the last 12 months",
                direction=1, actionable=True, driver="complaint", reason_group="complaint",
                **COUNT),
        Feature("open_complaints", s, "int64", "未解决投诉", "Open complaints",
                "有{value:.0f}笔投诉尚未解决", "{value:.0f} complaints still unresolved",
                direction=1, actionable=True, driver="complaint", reason_group="complaint",
                **COUNT),
        Feature("days_to_resolve_avg", s, "float64", "投诉平均解决天数",
                "Days to resolve a complaint",
                "投诉平均{value:.0f}天才解决", "Complaints took {value:.0f} days to resolve",
                direction=1, actionable=True, driver="complaint", reason_group="complaint",
                **COUNT),
        Feature("months_since_complaint", s, "float64", "距上次投诉月数",
                "Months since last complaint",
                "{value:.0f}个月前曾投诉", "Complained {value:.0f} months ago",
                direction=-1, actionable=True, driver="complaint", reason_group="complaint",
                **COUNT),
        Feature("months_since_complaint_resolved", s, "float64", "距投诉解决月数",
                "Months since a complaint was resolved",
                "投诉{value:.0f}个月前才解决",
                "A complaint was resolved only {value:.0f} months ago",
                direction=-1, actionable=True, driver="complaint", reason_group="complaint",
                **COUNT),

        Feature("maturing_30d", li, "float64", "30天内到期金额", "Maturing within 30 days",
                "{value:money}将在30天内到期，需挽留续作",
                "{value:money} matures within 30 days: ask to renew",
                direction=1, actionable=True, driver="maturity", reason_group="maturity", **AMOUNT,
                growth=G("{value:money}将在30天内到期，可再配置",
                         "{value:money} matures within 30 days: money to place")),
        Feature("maturing_share_30d", li, "float64", "30天内到期占资产比例",
                "Share of AUM maturing within 30 days",
                "{value:.0%}的资产将在30天内到期", "{value:.0%} of AUM matures within 30 days",
                direction=1, actionable=True, driver="maturity", reason_group="maturity",
                **RATIO,
                growth=G("{value:.0%}的资产将在30天内到期，可再配置",
                         "{value:.0%} of AUM matures within 30 days: money to place")),
        Feature("maturing_share_31_90d", li, "float64", "31至90天内到期占资产比例",
                "Share of AUM maturing in 31-90 days",
                "{value:.0%}的资产将在1至3个月内到期",
                "{value:.0%} of AUM matures in 1 to 3 months",
                direction=1, actionable=True, driver="maturity", reason_group="maturity",
                **RATIO,
                growth=G("{value:.0%}的资产将在1至3个月内到期，可提前规划",
                         "{value:.0%} of AUM matures in 1 to 3 months: plan where it goes")),
        Feature("age", li, "int64", "年龄", "Age",
                "年龄{value:.0f}岁", "Aged {value:.0f}",
                direction=0, actionable=False, sensitive=True, minimum=0, maximum=150),
        Feature("city_tier", li, "int64", "城市等级", "City tier",
                "{value:.0f}线城市", "Tier-{value:.0f} city",
                direction=0, actionable=False, sensitive=True,
                minimum=CITY_TIERS[0], maximum=CITY_TIERS[1]),
    ]
# fmt: on


def _balance(product: Product) -> Feature:
    """A product's balance; for money a customer holds (an asset), the money a growth offer can
    put to work — a loan's balance says nothing of the kind."""
    zh, en = (product.label(lang).replace("{", "{{").replace("}", "}}") for lang in LANGUAGES)
    growth = (
        Growth(f"{zh}余额{{value:money}}，可进一步配置", f"{{value:money}} in {en} to put to work")
        if product.kind == "asset"
        else None
    )
    return Feature(
        f"balance_{product.product}", "contribution", "float64", f"{zh}余额", f"{en} balance",
        f"{zh}余额{{value:money}}", f"{en} balance {{value:money}}",
        direction=0, actionable=False, **AMOUNT, growth=growth,
    )  # fmt: skip


@lru_cache(maxsize=16)
def _features(products: tuple[Product, ...], top_tier: int) -> tuple[Feature, ...]:
    codes = [p.product for p in products]
    duplicated = sorted({p for p in codes if codes.count(p) > 1})
    if duplicated:
        raise ValueError(f"product names must be unique; repeated: {duplicated}")
    features = tuple(_entries(products, top_tier))
    names = [feature.name for feature in features]
    clashing = sorted({name for name in names if names.count(name) > 1})
    if clashing:
        raise ValueError(f"feature names must be unique; products {codes} give {clashing} twice")
    return features


def _as_products(products: Iterable[Product | str]) -> tuple[Product, ...]:
    """Products, or bare product codes (named by their code)."""
    return tuple(
        p if isinstance(p, Product) else Product(product=p, kind="asset") for p in products
    )


def catalog(
    products: Iterable[Product | str] = (), tiers: TierLadder | None = None
) -> dict[str, Feature]:
    """Every model feature by name, in the feature table's order.

    Parameters
    ----------
    products : the bank's catalogue (``BankConfig.products``, or the products a feature file or
        model carries); one ``balance_<product>`` feature is made for each.
    tiers : the bank's tier ladder (``BankConfig.tiers``; default: the default ladder), which
        bounds ``tier_level``.
    """
    features = _features(_as_products(products), _top_tier(tiers))
    return {feature.name: feature for feature in features}


def feature_names(products: Iterable[Product | str] = ()) -> list[str]:
    """Names of every model feature, in the feature table's order."""
    return [feature.name for feature in _features(_as_products(products), _top_tier(None))]


def _top_tier(tiers: TierLadder | None) -> int:
    """The highest tier level: levels count from 0 for the lowest tier (features/tiers.py)."""
    return len((tiers or TierLadder()).tiers) - 1
