"""The API as a CRM integrator reads it (docs/design.md §8): /v1 paths, a spec that declares bearer
auth, every limit and every status, and answers that keep to it — on a real `bentoml serve`."""

from __future__ import annotations

import httpx
import pytest

from tests.serving.test_service import run_schemathesis

V1 = ("/v1/score", "/v1/retention_list", "/v1/customers/{customer_id}", "/v1/outcomes")
ERROR_STATUSES = {"401", "403", "404", "405", "413", "415", "422", "429", "503"}


@pytest.fixture(scope="module")
def contract(site):
    """The session's service (tests/conftest.py ``site``) and its spec."""
    return {
        "url": site.url,
        "tokens": site.tokens,
        "books": site.books[:2],
        "scores": site.scores(),
        "spec": httpx.get(site.url + "/openapi.json").json(),
        "folder": site.folder,
    }


def call(api, method, path, token=None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api['tokens'][token]}"} if token else {}
    return httpx.request(method, api["url"] + path, headers=headers, timeout=60, **kwargs)


def book(api, rm) -> list:
    scores = api["scores"]
    return scores.loc[scores["rm_id"].astype(str) == rm, "customer_id"].tolist()


def test_the_spec_declares_bearer_auth_v1_paths_limits_and_every_status(contract):
    spec = contract["spec"]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert set(V1) <= set(spec["paths"])
    for path in V1:
        for method, operation in spec["paths"][path].items():
            assert operation["security"] == [{"bearerAuth": []}], (path, method)
            assert not any(
                p["name"].lower() == "authorization" for p in operation.get("parameters", [])
            ), (path, method)
            assert ERROR_STATUSES <= set(operation["responses"]), (path, method)
            error = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}
            assert "Allow" in operation["responses"]["405"]["headers"]
    for old in ("/score", "/retention_list", "/customers/{customer_id}"):
        assert all(op["deprecated"] for op in spec["paths"][old].values()), old
    schemas = spec["components"]["schemas"]
    body = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    shapes = [{"$ref": f"#/components/schemas/{name}"} for name in ("ScoreByIds", "ScoreRecords")]
    assert body["schema"]["oneOf"] == shapes  # two object schemas: two classes in a client
    assert schemas["ScoreByIds"]["properties"]["customer_ids"]["maxItems"] == 10_000
    assert schemas["ScoreRecords"]["properties"]["customers"]["maxItems"] == 10_000
    for name, field in (("ScoreByIds", "customer_ids"), ("ScoreRecords", "customers")):
        assert schemas[name]["type"] == "object" and schemas[name]["required"] == [field]
        assert schemas[name]["additionalProperties"] is False


def test_the_either_or_is_schema_invalid_when_empty_and_answered_422(contract):
    import jsonschema

    spec = contract["spec"]
    body = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    validator = jsonschema.Draft202012Validator(
        {**body["schema"], "components": spec["components"]}
    )
    assert not validator.is_valid({})
    assert not validator.is_valid({"customers": [{"customer_id": 1}], "customer_ids": [1]})
    assert not validator.is_valid({"customer_ids": []})
    assert validator.is_valid({"customer_ids": [1]})
    assert validator.is_valid({"customer_ids": ["0001234", 5], "explain": False, "lang": "en"})
    for body in ({}, {"customers": [], "customer_ids": [1]}, {"customer_ids": []}):
        response = call(contract, "POST", "/v1/score", "crm", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["problems"]


def test_a_missing_key_is_401_in_the_envelope(contract):
    for scheme in (None, "Basic abc", "Bearer rk_unknown"):
        headers = {"Authorization": scheme} if scheme else {}
        response = httpx.post(
            contract["url"] + "/v1/score", json={"customer_ids": [1]}, headers=headers
        )
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"status", "message", "problems", "request_id"}


def test_the_old_paths_answer_like_v1(contract):
    ids = contract["scores"]["customer_id"].head(3).tolist()
    old = call(contract, "POST", "/score", "crm", json={"customer_ids": ids, "explain": False})
    new = call(contract, "POST", "/v1/score", "crm", json={"customer_ids": ids, "explain": False})
    assert old.status_code == new.status_code == 200
    assert old.json()["results"] == new.json()["results"]


def test_crm_pulls_any_rms_list_and_an_rm_only_its_own(contract):
    mine, other = contract["books"]
    crm = call(contract, "POST", "/v1/retention_list", "crm", json={"rm_id": other})
    assert crm.status_code == 200 and crm.json()["entries"]
    assert {e["customer_id"] for e in crm.json()["entries"]} <= set(book(contract, other))
    assert (
        call(contract, "POST", "/v1/retention_list", mine, json={"rm_id": other}).status_code == 403
    )
    assert (
        call(contract, "POST", "/v1/retention_list", mine, json={"rm_id": mine}).status_code == 200
    )
    nobody = call(contract, "POST", "/v1/retention_list", "crm", json={"rm_id": "RM-nobody"})
    assert nobody.status_code == 404


def test_unknown_ids_in_a_batch_are_reported_and_the_rest_scored(contract):
    ids = contract["scores"]["customer_id"].head(4).tolist()
    unknown = 999_999_999 if isinstance(ids[0], int) else "NO-SUCH-ID"
    asked = [ids[0], ids[1], unknown, ids[2]]
    response = call(contract, "POST", "/v1/score", "crm", json={"customer_ids": asked})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["customer_id"] for r in body["results"]] == [ids[0], ids[1], ids[2]]
    assert [(u["row"], u["customer_id"]) for u in body["unknown"]] == [(2, unknown)]
    assert body["unknown"][0]["problem"]
    rm = contract["books"][0]
    own = book(contract, rm)[:2]
    denied = call(contract, "POST", "/v1/score", rm, json={"customer_ids": [*own, unknown]})
    assert denied.status_code == 403  # outside the book, known or not: the whole request


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE", "PATCH"])
def test_a_method_a_path_does_not_serve_is_405_with_allow(contract, method):
    for path, allowed in (
        ("/v1/score", {"POST"}),
        ("/v1/customers/1", {"GET"}),
        ("/v1/outcomes", {"GET", "POST"}),
        ("/score", {"POST"}),
    ):
        for content in (None, b"\x80\x04 not json"):
            headers = {"Content-Type": "application/octet-stream"}
            response = httpx.request(
                method, contract["url"] + path, content=content, headers=headers
            )
            assert response.status_code == 405, (method, path, response.text)
            assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
            assert response.json()["error"]["status"] == 405


@pytest.mark.parametrize("role", ["crm", "rm"])
def test_schemathesis_with_every_check_finds_no_failure_on_outcomes(contract, role, tmp_path):
    token = contract["tokens"]["crm" if role == "crm" else contract["books"][0]]
    run_schemathesis(contract["url"], token, "^/v1/outcomes", tmp_path)
