"""The integrator's contract where a request goes wrong: 422s that name the field as the client
sent it and say the problem in words, the catalog's ranges on feature records (declared in the
spec, enforced by the route, loose enough for every real row), the unknown-id answers, and a
client generated from /openapi.json with typed request classes."""

from __future__ import annotations

import importlib
import subprocess
import sys
import typing
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from features.catalog import catalog
from features.config import BankConfig
from serving.api.schemas import MAX_ID, check_records
from training.dataset import products_in

# what pydantic calls its own types: never in an answer to a client
INTERNALS = ("function-", "constrained-", "json-or-python", "[as_id", "union_tag", "Input should")


@pytest.fixture(scope="module")
def api(site):
    frame = pd.read_parquet(site.scores_dir / "features.parquet")
    products = products_in(frame)
    return {
        "site": site,
        "frame": frame,
        "spec": httpx.get(site.url + "/openapi.json", timeout=30).json(),
        "features": site.features(),
        # the service's configuration is the default one (tests/serving/service_process.py)
        "entries": catalog(products, BankConfig().tiers),
        "scores": site.scores(),
    }


def problems(response: httpx.Response) -> dict[str, dict]:
    assert response.status_code == 422, response.text
    assert not any(word in response.text for word in INTERNALS), response.text
    return {p["field"]: p for p in response.json()["error"]["problems"]}


def as_record(row: pd.Series, features: list[str]) -> dict:
    """A feature table row as a CRM sends it: flags as booleans, numbers as numbers."""
    cid = row["customer_id"]
    record = {"customer_id": cid.item() if hasattr(cid, "item") else cid}
    for name in features:
        value = row[name]
        if pd.isna(value):
            record[name] = None
        elif isinstance(value, bool | np.bool_):
            record[name] = bool(value)
        else:
            record[name] = float(value)
    return record


def a_modelled_record(api) -> dict:
    """The record of a customer the churn model scores (eligible, not leaving)."""
    scores = api["scores"]
    modelled = scores["eligible_churn"].fillna(False) & ~scores["leaving_now"].fillna(False)
    customer = scores.loc[modelled, "customer_id"].iloc[0]
    row = api["frame"].loc[api["frame"]["customer_id"] == customer].iloc[0]
    return as_record(row, api["features"])


def test_bad_ids_are_named_as_sent_with_the_problem_in_words(api):
    site = api["site"]
    ids = api["scores"]["customer_id"].head(2).tolist()
    sent = {"customer_ids": [*ids, "not an id", True, -1, 2**60]}
    found = problems(site.call("POST", "/v1/score", "crm", json=sent))
    assert set(found) == {f"customer_ids[{i}]" for i in (2, 3, 4, 5)}
    assert [found[f"customer_ids[{i}]"]["row"] for i in (2, 3, 4, 5)] == [2, 3, 4, 5]
    assert found["customer_ids[2]"]["problem"].startswith(f"must be an integer in 0..{MAX_ID}")
    other = problems(site.call("POST", "/v1/score", "crm", json={"customer_ids": [1], "lang": 3}))
    assert other["lang"]["problem"] == "must be 'zh' or 'en'"
    outcome = {"request_id": "r-1", "customer_id": "a b", "channel": "fax", "reached": True}
    found = problems(site.call("POST", "/v1/outcomes", "crm", json=outcome))
    assert {"customer_id", "channel", "result"} <= set(found)
    assert found["result"]["problem"] == "required"


def test_a_body_of_neither_or_both_shapes_is_one_problem_in_words(api):
    site = api["site"]
    for body in ({}, {"customers": [], "customer_ids": [1]}, [1, 2], {"ids": [1]}):
        found = problems(site.call("POST", "/v1/score", "crm", json=body))
        assert list(found) == ["body"], body
        assert "exactly one of customer_ids" in found["body"]["problem"]
    found = problems(site.call("POST", "/v1/score", "crm", json={"customers": [{}, 5]}))
    assert found["customers[1]"] == {
        "row": 1,
        "field": "customers[1]",
        "problem": "must be a JSON object",
    }


def test_malformed_json_is_named_by_line_and_column(api):
    site = api["site"]
    headers = {"Content-Type": "application/json"}
    cases = [
        (b'{"customer_ids": [1 2]}', "line 1, column 21: Expecting ',' delimiter"),
        (b'{\n  "customer_ids": [\n    1,\n    2\n    3]\n}', "line 5, column 5: Expecting ','"),
        (b'{"customer_ids": [1], }', "line 1, column 23: Expecting property name"),
    ]
    for body, where in cases:
        response = site.call("POST", "/v1/score", "crm", content=body, headers=headers)
        found = problems(response)
        assert list(found) == ["body"] and found["body"]["row"] is None
        assert found["body"]["problem"].startswith("not valid JSON at " + where), found


def test_feature_records_out_of_the_catalogs_range_are_refused_by_name(api):
    site = api["site"]
    record = a_modelled_record(api)
    assert site.call("POST", "/v1/score", "crm", json={"customers": [record]}).status_code == 200
    bad = {
        "aum_avg_3m": -5e12,
        "tier_level": 99,
        "mobile_share_3m": 1.5,
        "txn_count_3m": -1,
        "months_in_tier": 2.5,
        "rm_assigned": 0.5,
        "aum_avg_1m": True,
    }
    bad = {k: v for k, v in bad.items() if k in record}
    assert len(bad) >= 6, "the served models lost most of the features this test sends"
    sent = [record, {**record, **bad}]
    found = problems(site.call("POST", "/v1/score", "crm", json={"customers": sent}))
    assert set(found) == {f"customers[1].{name}" for name in bad}
    assert all(p["row"] == 1 for p in found.values())
    tier = found["customers[1].tier_level"]["problem"]
    assert tier == "must be a whole number from 0 to 5, not 99"
    assert (
        found["customers[1].aum_avg_3m"]["problem"]
        == "must be a number of at least 0, not -5000000000000.0"
    )
    assert found["customers[1].aum_avg_1m"]["problem"] == "must be a number of at least 0, not true"
    unknown = problems(
        site.call("POST", "/v1/score", "crm", json={"customers": [{**record, "x": 1}]})
    )
    assert unknown == {
        "customers[0].x": {
            "row": 0,
            "field": "customers[0].x",
            "problem": "not a feature of the served models",
        }
    }


def test_the_spec_declares_each_features_range_from_the_catalog(api):
    import jsonschema

    spec, entries = api["spec"], api["entries"]
    properties = spec["components"]["schemas"]["FeatureRecord"]["properties"]
    for name in api["features"]:
        entry, declared = entries[name], properties[name]
        assert declared.get("minimum") == entry.minimum, name
        assert declared.get("maximum") == entry.maximum, name
        kind = {"bool": "boolean", "int64": "integer", "float64": "number"}[entry.dtype]
        assert kind in declared["type"], name
    assert (properties["tier_level"]["minimum"], properties["tier_level"]["maximum"]) == (0, 5)
    record = {k: v for k, v in a_modelled_record(api).items() if v is not None}
    schema = {**spec["components"]["schemas"]["FeatureRecord"], "components": spec["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(record)
    for name, bad in (("tier_level", 99), ("aum_avg_3m", -1.0), ("mobile_share_3m", 2.0)):
        assert not validator.is_valid({**record, name: bad}), name


def test_every_row_of_the_scored_snapshot_is_within_the_ranges(api):
    """The ranges are not tighter than the bank's real data: every customer of the snapshot,
    as a feature record, passes the route's checks (missing values allowed here: which ones
    the models need is another rule)."""
    frame, features = api["frame"], api["features"]
    rows = [as_record(row, features) for _, row in frame.iterrows()]
    found = check_records(rows, features, set(features), api["entries"])
    assert not found, [p.model_dump() for p in found[:5]]
    assert len(rows) == len(api["scores"]) > 1_000


def test_unknown_ids_say_whether_the_kind_or_the_month_is_wrong(api):
    site, scores = api["site"], api["scores"]
    assert pd.api.types.is_integer_dtype(scores["customer_id"])  # the demo bank: integer ids
    known = int(scores["customer_id"].iloc[0])
    cutoff = site.call("GET", f"/v1/customers/{known}", "crm").json()["cutoff"]
    asked = [known, 999_999_999, "0001", "C-17", str(known)]
    body = site.call("POST", "/v1/score", "crm", json={"customer_ids": asked}).json()
    assert [r["customer_id"] for r in body["results"]] == [known, str(known)]
    why = {u["customer_id"]: u["problem"] for u in body["unknown"]}
    assert why[999_999_999] == f"not in the scored snapshot of {cutoff}"
    assert "integers" not in why[999_999_999]
    for wrong in ("0001", "C-17"):
        assert why[wrong].startswith("not an id of this bank: its ids are integers"), why


def test_a_generated_client_has_typed_requests_and_scores_by_id(api, tmp_path):
    """openapi-python-client (pinned in requirements.lock) against the running service."""
    site = api["site"]
    bin_dir = Path(sys.executable).parent
    config = tmp_path / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no ruff run over the generated code: faster
    result = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--url", site.url + "/openapi.json"]
        + ["--output-path", str(tmp_path / "retain_client"), "--meta", "none"]
        + ["--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sys.path.insert(0, str(tmp_path))
    try:
        client_module = importlib.import_module("retain_client")
        score = importlib.import_module("retain_client.api.default.score_v1_score_post")
        models = importlib.import_module("retain_client.models")
    finally:
        sys.path.remove(str(tmp_path))
    body_type = typing.get_type_hints(score.sync)["body"]
    members = typing.get_args(body_type)
    assert set(members) == {models.ScoreByIds, models.ScoreRecords}, body_type
    assert all(isinstance(m, type) and hasattr(m, "to_dict") for m in members)
    ids = api["scores"]["customer_id"].head(3).tolist()
    client = client_module.AuthenticatedClient(base_url=site.url, token=site.tokens["crm"])
    with client:
        answer = score.sync(client=client, body=models.ScoreByIds(customer_ids=ids))
        assert isinstance(answer, models.ScoreResponse), answer
        assert [r.customer_id for r in answer.results] == ids
        record = models.FeatureRecord.from_dict(a_modelled_record(api))
        live = score.sync(client=client, body=models.ScoreRecords(customers=[record]))
        assert isinstance(live, models.ScoreResponse), live
        assert live.results[0].source == "live"
