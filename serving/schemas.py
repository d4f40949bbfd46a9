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
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

MAX_CUSTOMERS = 10_000
MAX_ID = 2**62
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# Ids are the bank's own, integer or string, and come back exactly as sent: "0001234" stays a
# string with its zeros (never the number 1234), 1234 stays a number.
CustomerId = Annotated[
    StrictInt | StrictStr,
    Field(
        description="The bank's customer id, as the bank has it: an integer (0..2^62) or a "
        "string of letters, digits and _.:- (at most 64), leading zeros kept."
    ),
]
IntegerId = Annotated[StrictInt, Field(ge=0, le=MAX_ID)]
StringId = Annotated[StrictStr, Field(pattern=ID_PATTERN)]
RequestId = IntegerId | StringId
Lang = Literal["zh", "en"]
Scalar = float | int | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(Strict):
    """Either ``customers`` (feature records, each with its ``customer_id``) or
    ``customer_ids`` (looked up in the scored snapshot), not both."""

    customers: list[dict[str, Scalar | StrictStr]] | None = Field(
        default=None, description="Feature records; at most 10,000."
    )
    customer_ids: list[RequestId] | None = Field(default=None, description="At most 10,000 ids.")
    explain: bool = Field(default=True, description="Add the top-3 churn reasons.")
    lang: Lang = "zh"


class RetentionListRequest(Strict):
    rm_id: str = Field(min_length=1, max_length=64)
    k: int | None = Field(default=None, ge=1, le=MAX_CUSTOMERS)
    lang: Lang = "zh"


class Reason(BaseModel):
    feature: str
    value: float | None
    contribution: float
    text_zh: str
    text_en: str


class ScoreResult(BaseModel):
    customer_id: CustomerId
    churn_probability: float
    risk_band: Literal["low", "medium", "high"]
    propensities: dict[str, float]
    upgrade_probability: float
    reasons: list[Reason] | None


class ScoreResponse(BaseModel):
    results: list[ScoreResult]
    models: dict[str, str]
    request_id: str


class ListEntry(BaseModel):
    rank: int
    customer_id: CustomerId
    customer_name: str
    tier: str | None
    pyramid_level: int | None
    p_churn: float
    contribution_12m: float
    expected_loss: float
    reasons: list[str]
    next_best_offer: str | None
    offer_propensity: float | None
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
            problems.append(Problem(row=row, field="customer_id", problem=(
                f"must be an integer in 0..{MAX_ID} or a string of letters, digits and _.:- "
                "(at most 64)")))  # fmt: skip
        for name in sorted(set(record) - known - {"customer_id"}):
            problems.append(Problem(row=row, field=name, problem="unknown feature"))
        for name in features:
            value = record.get(name)
            if value is None:
                if name not in nullable:
                    problems.append(Problem(row=row, field=name, problem=(
                        "required: the model does not treat this feature as missing")))  # fmt: skip
            elif isinstance(value, str):
                problems.append(Problem(row=row, field=name, problem="must be a number"))
            elif isinstance(value, float) and not math.isfinite(value):
                problems.append(Problem(row=row, field=name, problem="must be a finite number"))
    return problems
