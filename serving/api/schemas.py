"""Request and response models of the scoring API, and the checks of feature records.

Pydantic describes the envelope (so the OpenAPI spec is exact); the feature records inside
``/score`` are checked here against the models' own feature list, because that list comes
from the registry at start-up. Every problem is reported at once, with its row index.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import lightgbm as lgb
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

MAX_CUSTOMERS = 10_000
# JSON's safe integers: a larger number loses digits in JavaScript clients and in validators
# that compare as doubles (a spec could not say where it ends); send a larger id as a string
MAX_ID = 2**53 - 1
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# Ids are the bank's own, integer or string, and come back exactly as sent: "0001234" stays a
# string with its zeros (never the number 1234), 1234 stays a number.
CustomerId = Annotated[
    StrictInt | StrictStr,
    Field(
        description="The bank's customer id, as the bank has it: an integer (0..2^53-1) or a "
        "string of letters, digits and _.:- (at most 64), leading zeros kept."
    ),
]


def as_id(value):
    """An integral JSON number as the integer it is (``1234.0`` is 1234, as JSON Schema reads
    it); anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# JSON has one number type: 5.0 is the integer 5, "5" and true are not numbers
IntegerId = Annotated[StrictInt, Field(ge=0, le=MAX_ID), BeforeValidator(as_id)]
StringId = Annotated[StrictStr, Field(pattern=ID_PATTERN)]
RequestId = IntegerId | StringId
Lang = Literal["zh", "en"]
Scalar = float | int | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(Strict):
    """Either ``customers`` (feature records, each with its ``customer_id``) or
    ``customer_ids`` (looked up in the scored snapshot), not both."""

    # at most MAX_CUSTOMERS each: declared as maxItems in the spec, answered 413 by the route
    customers: list[dict[str, Scalar | StrictStr]] | None = Field(
        default=None, description="Feature records; at most 10,000."
    )
    customer_ids: list[RequestId] | None = Field(default=None, description="At most 10,000 ids.")
    explain: StrictBool = Field(default=True, description="Add the top-3 churn reasons.")
    lang: Lang = "zh"

    @field_validator("customers", "customer_ids", mode="before")
    @classmethod
    def _a_list_when_given(cls, value):
        if value is None:  # absent is fine, null is not (the spec offers only a list)
            raise ValueError("must be a list when given, not null")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        # the either-or, as integrators' tools read it: exactly one of the two lists
        schema = handler.resolve_ref_schema(handler(core_schema))
        schema["oneOf"] = [
            {"required": ["customers"], "not": {"required": ["customer_ids"]}},
            {"required": ["customer_ids"], "not": {"required": ["customers"]}},
        ]
        for name in ("customers", "customer_ids"):  # one list, never null
            prop = schema["properties"][name]
            listed = next(s for s in prop.pop("anyOf") if s.get("type") == "array")
            prop.update(listed, minItems=1, maxItems=MAX_CUSTOMERS)
            prop.pop("default", None)
        return schema


class RetentionListRequest(Strict):
    rm_id: str = Field(min_length=1, max_length=64)
    k: Annotated[StrictInt, Field(ge=1, le=MAX_CUSTOMERS), BeforeValidator(as_id)] | None = None
    lang: Lang = "zh"


class Reason(BaseModel):
    feature: str
    value: float | None
    contribution: float = Field(description="Log-odds contribution of the reason's group.")
    context: bool = Field(default=False, description="Background, not something an RM can act on.")
    text_zh: str
    text_en: str


class OfferReasons(BaseModel):
    zh: list[str] = []
    en: list[str] = []


class Offer(BaseModel):
    product: str = Field(description="A product code, or tier_upgrade.")
    kind: Literal["retention", "growth"]
    propensity: float | None
    amount: float | None = Field(description="A renewal's maturing amount (CNY).")
    date: str | None = Field(description="A renewal's maturity date.")
    value_added: float | None = Field(default=None, description="Growth: value an RM can add.")
    reasons: OfferReasons = Field(description="Growth: why the offer fits.")


class ListPlace(BaseModel):
    list_id: str | None = Field(description="The RM (or outlet_<id>) whose list it is.")
    kind: Literal["retention", "growth"] | None = Field(description="None: held back.")
    rank: int | None
    group: Literal["treated", "control", "explore", "none"] | None = Field(
        description="treated: called by rank; control: held back this month to measure the "
        "lists' effect; explore: drawn at random from below the cut and called; none: below "
        "the cut, not drawn."
    )


class ScoreResult(BaseModel):
    customer_id: CustomerId
    source: Literal["snapshot", "live"] = Field(
        description="snapshot: the scored month's answer (ids); live: a feature record scored "
        "now (no month facts: leaving flag, list, action, offer are null)."
    )
    churn_probability: float = Field(description="1 for a customer whose assets are leaving.")
    risk_band: Literal["low", "medium", "high"]
    leaving_now: bool | None
    eligible: bool | None = Field(description="Eligible for the churn model this month.")
    expected_loss: float | None
    uplift: float | None = Field(
        default=None,
        description="The churn probability a call removes (the uplift champion's effect; "
        "negative: a call pushes the customer away); null without an uplift model.",
    )
    saved_value: float | None = Field(
        default=None, description="uplift × contribution − call cost (CNY), the lists' ranking."
    )
    contribution_12m: float | None
    propensities: dict[str, float]
    upgrade_probability: float
    reasons: list[Reason] | None
    action: str | None
    offer: Offer | None
    do_not_contact: bool | None
    open_complaint: bool | None
    membership: ListPlace | None = Field(
        description="The customer's place on this month's lists (or the control group)."
    )


class UnknownId(BaseModel):
    row: int = Field(description="Index of the id in ``customer_ids``.")
    customer_id: CustomerId
    problem: str


class ScoreResponse(BaseModel):
    results: list[ScoreResult]
    unknown: list[UnknownId] = Field(
        default=[], description="Ids of ``customer_ids`` not in the scored snapshot; not scored."
    )
    models: dict[str, str]
    request_id: str


class ListEntry(BaseModel):
    rank: int
    customer_id: CustomerId
    customer_name: str
    tier: str | None
    pyramid_level: int | None
    p_churn: float
    risk_band: Literal["low", "medium", "high"]
    leaving_now: bool
    contribution_12m: float
    expected_loss: float
    saved_value: float | None = None
    reasons: list[str]
    next_best_offer: str | None
    offer_propensity: float | None
    offer_amount: float | None
    offer_date: str | None
    action: str


class RetentionListResponse(BaseModel):
    rm_id: str
    cutoff: str
    entries: list[ListEntry]
    models: dict[str, str]
    request_id: str


class CustomerResponse(BaseModel):
    customer_id: CustomerId
    cutoff: str
    rm_id: str | None
    customer_name: str
    result: ScoreResult
    features: dict[str, Scalar]
    models: dict[str, str]
    request_id: str


Channel = Literal["call", "visit", "message", "event"]
Result = Literal["stays", "will_move_money", "not_interested", "complaint", "unreachable"]


class OutcomeRequest(Strict):
    """What a contact achieved, for one customer; ``request_id`` makes a retry safe."""

    request_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="The client's own id of this submission: a repeat "
        "with the same id is stored once and answered with the stored "
        "outcome (200 instead of 201).",
    )
    customer_id: RequestId
    channel: Channel
    reached: StrictBool
    result: Result
    next_step: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=500)


class OutcomeRecord(BaseModel):
    outcome_id: int
    request_id: str
    customer_id: CustomerId
    rm_id: str | None
    channel: Channel
    reached: bool
    result: Result
    next_step: str
    note: str
    recorded_at: str = Field(description="ISO 8601, UTC.")
    recorded_by: str = Field(description="Name of the key (or page user) that recorded it.")


class OutcomeResponse(BaseModel):
    outcome: OutcomeRecord
    request_id: str


class OutcomeList(BaseModel):
    customer_id: CustomerId
    outcomes: list[OutcomeRecord] = Field(description="Newest first.")
    request_id: str


class Problem(BaseModel):
    row: int | None = Field(description="Index of the record in the request, when it has one.")
    field: str
    problem: str


class ErrorBody(BaseModel):
    status: int
    message: str
    problems: list[Problem] = []
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def feature_record_schema(features: list[str], nullable: set[str]) -> dict:
    """The JSON schema of one ``/score`` feature record for the served models: the id, every
    feature (numbers; booleans for flags), null only where the models treat it as missing."""
    value = {"type": ["number", "boolean"]}
    ids = [
        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        {"type": "string", "pattern": ID_PATTERN},
    ]
    properties = {"customer_id": {"anyOf": ids}}
    for name in features:
        properties[name] = {"type": ["number", "boolean", "null"]} if name in nullable else value
    required = ["customer_id", *(n for n in features if n not in nullable)]
    return {
        "title": "FeatureRecord",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def nullable_features(booster: lgb.Booster) -> set[str]:
    """Features a missing value is *treated as missing* for: every split on them routes NaN
    by a learned default (missing_type "NaN"), or the model never splits on them. Where a
    split has missing_type "None", LightGBM would silently turn NaN into 0 — so those
    features must be given."""
    names = booster.feature_name()
    strict: set[str] = set()

    def walk(node: dict) -> None:
        if "split_feature" not in node:
            return
        if node.get("missing_type") != "NaN":
            strict.add(names[node["split_feature"]])
        walk(node["left_child"])
        walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return set(names) - strict


def valid_id(value) -> bool:
    value = as_id(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_ID
    return isinstance(value, str) and re.match(ID_PATTERN, value) is not None


def check_records(
    records: list[dict[str, Scalar]], features: list[str], nullable: set[str]
) -> list[Problem]:
    """Every problem with the feature records: unknown fields, missing ids, missing values
    where the model does not treat them as missing, non-finite numbers."""
    known = set(features)
    problems: list[Problem] = []
    for row, record in enumerate(records):
        cid = record.get("customer_id")
        if cid is None:
            problems.append(Problem(row=row, field="customer_id", problem="required"))
        elif not valid_id(cid):
            problems.append(
                Problem(
                    row=row,
                    field="customer_id",
                    problem=(
                        f"must be an integer in 0..{MAX_ID} or a string of letters, digits "
                        "and _.:- (at most 64)"
                    ),
                )
            )
        for name in sorted(set(record) - known - {"customer_id"}):
            problems.append(Problem(row=row, field=name, problem="unknown feature"))
        for name in features:
            value = record.get(name)
            if value is None:
                if name not in nullable:
                    problems.append(
                        Problem(
                            row=row,
                            field=name,
                            problem=("required: the model does not treat this feature as missing"),
                        )
                    )
            elif isinstance(value, str):
                problems.append(Problem(row=row, field=name, problem="must be a number"))
            elif isinstance(value, float) and not math.isfinite(value):
                problems.append(Problem(row=row, field=name, problem="must be a finite number"))
    return problems
