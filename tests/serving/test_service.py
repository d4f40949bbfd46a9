"""The scoring API as a CRM system and an RM meet it: a real `bentoml serve` on a free port."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROUTES = [
    ("POST", "/score"),
    ("POST", "/retention_list"),
    ("GET", "/customers/1"),
    ("GET", "/healthz"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("POST", "/"),
]


@pytest.fixture(scope="module")
def api(site, scored):
    """The session's service (tests/conftest.py ``site``) as these tests read it."""
    return {
        "url": site.url,
        "tokens": site.tokens,
        "books": site.books,
        "scores": site.scores(),
        "keys": site.keys,
        "folder": site.folder,
        "service": site.service,
        "features": pd.read_parquet(scored.out / "features.parquet"),
    }


def call(api, method, path, token=None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api['tokens'][token]}"} if token else {}
    return httpx.request(method, api["url"] + path, headers=headers, timeout=60, **kwargs)


def records(api, ids) -> list[dict]:
    from features.catalog import feature_names
    from training.dataset import products_in

    names = feature_names(products_in(api["features"]))
    rows = api["features"].set_index("customer_id").loc[ids, names]
    out = []
    for cid, row in rows.iterrows():
        out.append(
            {
                "customer_id": int(cid),
                **{
                    k: (
                        None
                        if pd.isna(v)
                        else (bool(v) if isinstance(v, (bool, np.bool_)) else float(v))
                    )
                    for k, v in row.items()
                },
            }
        )
    return out


def no_customer_data(response: httpx.Response) -> bool:
    """A refusal is an error envelope only: a message and a request id, nothing about anyone."""
    body = response.json()
    error = body.get("error", {})
    return (
        set(body) == {"error"}
        and set(error) == {"status", "message", "problems", "request_id"}
        and not error["problems"]
    )


def test_infrastructure_endpoints_answer(api):
    for path in ("/healthz", "/livez", "/readyz"):
        assert call(api, "GET", path).status_code == 200, path
    assert call(api, "GET", "/metrics").status_code == 401  # metrics need a key
    assert call(api, "GET", "/metrics", "admin").status_code == 200
    spec = call(api, "GET", "/docs").json()
    assert {"/score", "/retention_list", "/customers/{customer_id}"} <= set(spec["paths"])


def test_keys_are_required_and_stored_hashed(api):
    assert call(api, "POST", "/score", json={"customer_ids": [1]}).status_code == 401
    bad = httpx.post(
        api["url"] + "/score",
        json={"customer_ids": [1]},
        headers={"Authorization": "Bearer rk_not-a-key"},
    )
    assert bad.status_code == 401 and "customer" not in bad.json()["error"]["message"].lower()
    stored = api["keys"].read_text()
    assert all(token not in stored for token in api["tokens"].values())


def test_scores_for_feature_records_equal_the_offline_scores(api):
    scores = api["scores"]
    # eligible customers not already leaving: a live record carries no month facts, so the
    # snapshot's rule for the leaving (p_churn = 1) is not the model's; and a customer who is
    # not eligible (new, or too small) may lack features the churn model never saw missing
    modelled = scores["eligible_churn"].fillna(False) & ~scores["leaving_now"].fillna(False)
    sample = scores[modelled & scores["reason_1_feature"].notna()].sample(300, random_state=0)
    response = call(
        api,
        "POST",
        "/score",
        "crm",
        json={"customers": records(api, sample["customer_id"].tolist()), "lang": "en"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["models"] == {
        c.removeprefix("model_version_"): str(scores[c].iloc[0])
        for c in scores
        if c.startswith("model_version_")
    }
    offline = sample.set_index("customer_id")
    for result in body["results"]:
        row = offline.loc[result["customer_id"]]
        assert abs(result["churn_probability"] - row["p_churn"]) <= 1e-9
        assert abs(result["upgrade_probability"] - row["p_upgrade"]) <= 1e-9
        for product, p in result["propensities"].items():
            assert abs(p - row[f"propensity_{product}"]) <= 1e-9
        assert result["risk_band"] == row["risk_band"]
        shown = [r["feature"] for r in result["reasons"]]
        expected = [row[f"reason_{k}_feature"] for k in (1, 2, 3)]
        assert shown == [f for f in expected if isinstance(f, str)]
        assert [r["text_en"] for r in result["reasons"]] == [
            row[f"reason_{k}_text_en"] for k in range(1, len(shown) + 1)
        ]


def test_ids_are_looked_up_in_the_snapshot(api):
    ids = api["scores"]["customer_id"].head(20).tolist()
    body = call(api, "POST", "/score", "admin", json={"customer_ids": ids, "explain": False}).json()
    assert [r["customer_id"] for r in body["results"]] == ids
    assert all(r["reasons"] is None for r in body["results"])
    one = call(api, "GET", f"/customers/{ids[0]}", "crm").json()
    assert one["customer_id"] == ids[0] and one["features"] and "*" in one["customer_name"]


def test_too_many_customers_is_413(api):
    response = call(api, "POST", "/score", "crm", json={"customer_ids": list(range(10_001))})
    assert response.status_code == 413


def test_every_invalid_field_is_listed_with_its_row(api):
    rows = records(api, api["scores"]["customer_id"].head(3).tolist())
    rows[0]["not_a_feature"] = 1.0
    rows[1]["aum_avg_1m"] = "lots"
    del rows[2]["customer_id"]
    response = call(api, "POST", "/score", "crm", json={"customers": rows})
    assert response.status_code == 422
    problems = {(p["row"], p["field"]) for p in response.json()["error"]["problems"]}
    assert (1, "customers[1].aum_avg_1m") in problems
    rows[1]["aum_avg_1m"] = 5.0
    problems = {
        (p["row"], p["field"])
        for p in call(api, "POST", "/score", "crm", json={"customers": rows}).json()["error"][
            "problems"
        ]
    }
    assert problems == {(0, "customers[0].not_a_feature"), (2, "customers[2].customer_id")}


def test_missing_features_only_where_the_model_treats_them_as_missing(api):
    from serving.api.schemas import nullable_features  # noqa: F401  (documented rule under test)

    row = records(api, api["scores"]["customer_id"].head(1).tolist())[0]
    required = []
    for name in list(row):
        if name == "customer_id":
            continue
        trial = {**row, name: None}
        status = call(api, "POST", "/score", "crm", json={"customers": [trial]}).status_code
        assert status in (200, 422), (name, status)
        if status == 422:
            required.append(name)
    assert required, "every split routes NaN by a default: then no feature would be required"


def test_rm_keys_see_only_their_own_book(api):
    rm = api["books"][0]
    scores = api["scores"]
    own = scores.loc[scores["rm_id"].astype(str) == rm, "customer_id"].head(5).tolist()
    other = scores.loc[scores["rm_id"].astype(str) != rm, "customer_id"].head(5).tolist()
    assert call(api, "POST", "/score", rm, json={"customer_ids": own}).status_code == 200
    denied = call(api, "POST", "/score", rm, json={"customer_ids": own + other[:1]})
    assert denied.status_code == 403
    assert no_customer_data(denied)
    assert call(api, "GET", f"/customers/{other[0]}", rm).status_code == 403
    mine = call(api, "POST", "/retention_list", rm, json={"rm_id": rm, "lang": "zh"})
    assert mine.status_code == 200 and mine.json()["entries"]
    assert {e["customer_id"] for e in mine.json()["entries"]} <= set(
        scores.loc[scores["rm_id"].astype(str) == rm, "customer_id"]
    )
    other_list = call(api, "POST", "/retention_list", rm, json={"rm_id": api["books"][1]})
    assert other_list.status_code == 403
    # a CRM system delivers lists to RM workbenches (docs/design.md §8)
    assert call(api, "POST", "/retention_list", "crm", json={"rm_id": rm}).status_code == 200


def test_isolation_property_no_rm_key_ever_receives_another_book(api):
    scores = api["scores"]
    owner = dict(zip(scores["customer_id"], scores["rm_id"].astype("string"), strict=True))
    ids = scores["customer_id"].tolist()
    rms = api["books"]
    client = httpx.Client(base_url=api["url"], timeout=60)
    seen = {"cases": 0, "allowed": 0}

    @settings(
        max_examples=1_000, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        rm=st.sampled_from(rms),
        customers=st.lists(st.sampled_from(ids), min_size=1, max_size=4),
        endpoint=st.sampled_from(["score", "customer", "list"]),
        list_rm=st.sampled_from(rms),
    )
    def check(rm, customers, endpoint, list_rm):
        headers = {"Authorization": f"Bearer {api['tokens'][rm]}"}
        if endpoint == "score":
            r = client.post("/score", json={"customer_ids": customers}, headers=headers)
            got = [x["customer_id"] for x in r.json().get("results", [])]
        elif endpoint == "customer":
            r = client.get(f"/customers/{customers[0]}", headers=headers)
            got = [r.json()["customer_id"]] if r.status_code == 200 else []
        else:
            r = client.post("/retention_list", json={"rm_id": list_rm}, headers=headers)
            got = [e["customer_id"] for e in r.json().get("entries", [])]
        assert r.status_code in (200, 403), r.text
        assert all(owner.get(c) == rm for c in got), (rm, got)
        if r.status_code == 403:
            assert no_customer_data(r)
        seen["cases"] += 1
        seen["allowed"] += r.status_code == 200

    check()
    assert seen["cases"] >= 1_000 and seen["allowed"] > 50


def test_a_pickle_payload_is_refused_on_every_route_and_never_runs(api, tmp_path):
    canary = tmp_path / "canary"

    class Exploit:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    payload = pickle.dumps(Exploit())
    for method, path in ROUTES:
        for token in (None, "admin"):
            headers = {"Content-Type": "application/vnd.bentoml+pickle"}
            if token:
                headers["Authorization"] = f"Bearer {api['tokens'][token]}"
            r = httpx.request(method, api["url"] + path, content=payload, headers=headers)
            if method == "POST" or r.status_code >= 400:
                assert 400 <= r.status_code < 500, (method, path, r.status_code)
    multipart = httpx.post(
        api["url"] + "/score",
        files={"f": ("x.pkl", payload)},
        headers={"Authorization": f"Bearer {api['tokens']['admin']}"},
    )
    assert multipart.status_code == 415
    assert not canary.exists()


def test_the_audit_log_records_every_pull_without_personal_data(api):
    pulled = call(api, "POST", "/retention_list", "crm", json={"rm_id": api["books"][0]})
    assert pulled.status_code == 200  # a pull of its own: the test needs no other test first
    lines = [json.loads(x) for x in (api["folder"] / "audit.log").read_text().splitlines()]
    pulls = [x for x in lines if x["endpoint"] == "/retention_list" and x["status"] == 200]
    assert pulls and {"time", "key", "role", "rm_book", "customers", "models", "request_id"} <= set(
        pulls[0]
    )
    names = api["scores"]["customer_name"].head(50)
    text = (api["folder"] / "audit.log").read_text()
    assert not any(n in text for n in names if len(n) > 3)


# 413 is this API's documented answer to more than maxItems rows; schemathesis' default list of
# rejections omits it (and allows 5xx, which we never do)
SCHEMATHESIS_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "429"]
"""


def run_schemathesis(url: str, token: str, paths: str, folder: Path) -> None:
    """`schemathesis run --checks all` on the operations whose path matches ``paths``.

    100 cases per operation and mode (positive and negative) plus the coverage phase's cases
    (unsupported methods, missing auth, boundaries) keep a run to a few seconds."""
    config = folder / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    args = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        url + "/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--include-path-regex",
        paths,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "100",
        "--seed",
        "7",
        "--suppress-health-check",
        "all",
        "--no-shrink",
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-dir",
        str(folder),
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


@pytest.mark.parametrize("role", ["crm", "rm"])
def test_schemathesis_with_every_check_finds_no_failure(api, role, tmp_path):
    """The /v1 data routes as a CRM system and as an RM. Outcomes are fuzzed where the service
    has a store of its own (test_api_contract)."""
    token = api["tokens"]["crm" if role == "crm" else api["books"][0]]
    run_schemathesis(api["url"], token, "^/v1/(score|retention_list|customers)", tmp_path)


def test_odd_ids_from_an_rm_key_are_refused_not_crashed_on(api):
    rm = api["books"][0]
    assert call(api, "POST", "/score", rm, json={"customer_ids": [2**63]}).status_code == 422
    assert call(api, "POST", "/score", rm, json={"customer_ids": [-1]}).status_code == 422
    assert call(api, "GET", "/customers/999999999", rm).status_code == 403
    assert call(api, "GET", "/customers/999999999", "admin").status_code == 404
    # a path id is a string: an out-of-range number is only an id outside this RM's book
    assert call(api, "GET", f"/customers/{2**63}", rm).status_code == 403
    assert call(api, "GET", "/customers/0001", "admin").status_code == 404  # not customer 1


def test_paths_no_route_matches_still_answer_in_the_json_envelope(api):
    for path in ("/customers/%F1%AC%0Ae", "/nothing-here"):
        response = call(api, "GET", path, "admin")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert no_customer_data(response)
