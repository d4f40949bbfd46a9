"""One customer, one answer (docs/design.md §8): a list row, the RM page, `GET
/v1/customers/{id}` and `POST /v1/score` by id say the same about the same customer — on a real
`bentoml serve` of the demo bank's scored month.

Customers are drawn from every kind an RM meets: already leaving, on a retention list by rank
or drawn from below the cut, listable but below the cut and not drawn, on a growth list, held
back in the control group, not to be contacted, on no list.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.texts import ACTIONS, OFFERS, text

KINDS = (
    "leaving",
    "retention",
    "explore",
    "below_the_cut",
    "growth",
    "control",
    "do_not_contact",
    "unlisted",
)


def kinds_of(scores: pd.DataFrame) -> dict[str, list]:
    """The customers of each kind in the scored month."""
    leaving = scores["leaving_now"].fillna(False).astype(bool)
    dnc = scores["do_not_contact"].fillna(False).astype(bool)
    kind = scores["list_kind"]
    masks = {
        "leaving": leaving & (kind == "retention"),
        "retention": ~leaving & (kind == "retention") & (scores["list_group"] == "treated"),
        "explore": scores["list_group"] == "explore",
        "below_the_cut": scores["list_group"] == "none",
        "growth": kind == "growth",
        "control": scores["list_group"] == "control",
        "do_not_contact": dnc,
        "unlisted": kind.isna() & scores["list_group"].isna() & ~dnc,
    }
    return {name: scores.loc[m.fillna(False), "customer_id"].tolist() for name, m in masks.items()}


class ById(HTMLParser):
    """The text of every element with an id, and the items of the reason list."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.reasons: list[str] = []
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "input", "img", "meta", "link"):
            return
        self._open.append((tag, dict(attrs).get("id")))
        if tag == "li" and any(i == "reason-list" for _, i in self._open):
            self.reasons.append("")

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _, element in self._open:
            if element:
                self.text[element] = self.text.get(element, "") + data
        if (
            self._open
            and self._open[-1][0] == "li"
            and any(i == "reason-list" for _, i in self._open)
        ):
            self.reasons[-1] += data


def page_of(html: str) -> ById:
    parser = ById()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def month(site, scored):
    scores = pd.read_parquet(scored.out / "scores.parquet")
    lists = pd.concat(
        [
            pd.read_parquet(scored.out / "lists.parquet").assign(kind="retention"),
            pd.read_parquet(scored.out / "growth.parquet").assign(kind="growth"),
        ]
    ).set_index("customer_id")
    kinds = kinds_of(scores)
    assert all(len(kinds[k]) >= 5 for k in KINDS), {k: len(v) for k, v in kinds.items()}
    client = httpx.Client(base_url=site.url, timeout=60)
    admin = {"Authorization": f"Bearer {site.tokens['admin']}"}
    login = client.get("/ui/login")
    nonce = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
    client.post("/ui/login", data={"key": site.tokens["admin"], "csrf": nonce})
    assert "retain_session" in client.cookies
    yield {"kinds": kinds, "lists": lists, "client": client, "admin": admin}
    client.close()


def pct(p: float) -> str:
    return f"{p * 100:.1f}%"


def list_entries(month, list_id: str) -> dict:
    """The API's retention list of ``list_id``, by customer id."""
    response = month["client"].post(
        "/v1/retention_list", json={"rm_id": list_id, "lang": "en"}, headers=month["admin"]
    )
    assert response.status_code == 200, response.text
    return {e["customer_id"]: e for e in response.json()["entries"]}


def check_list_row(row: pd.Series, said: dict, month) -> None:
    """A list row (lists.parquet / growth.parquet, what the CSV and XLSX show) against the
    answer."""
    place = said["membership"]
    assert place is not None and place["kind"] == row["kind"]
    assert (place["list_id"], place["rank"]) == (row["list_id"], row["rank"])
    assert said["churn_probability"] == pytest.approx(row["p_churn"], abs=1e-12)
    assert said["action"] == row["action"]
    reasons = [r for r in (row["reason_1"], row["reason_2"], row["reason_3"]) if isinstance(r, str)]
    offer = said["offer"]
    if row["kind"] == "growth":
        assert offer["product"] == row["growth_offer"]
        assert offer["reasons"]["en"] == reasons
        return
    assert said["risk_band"] == row["risk_band"]
    assert said["leaving_now"] == bool(row["leaving_now"])
    assert said["expected_loss"] == pytest.approx(row["expected_loss"], abs=1e-6)
    assert [r["text_en"] for r in said["reasons"]] == reasons
    if isinstance(row["next_best_offer"], str):
        assert offer["product"] == row["next_best_offer"]
        if pd.notna(row["offer_amount"]):
            assert offer["amount"] == pytest.approx(row["offer_amount"])
            assert offer["date"] == str(pd.Timestamp(row["offer_date"]).date())
    else:
        assert offer is None
    entry = list_entries(month, row["list_id"])[said["customer_id"]]
    assert entry["p_churn"] == pytest.approx(row["p_churn"], abs=1e-12)
    assert (entry["rank"], entry["action"]) == (row["rank"], row["action"])
    assert entry["reasons"] == reasons
    assert entry["leaving_now"] == said["leaving_now"]


def check_page(html: str, said: dict) -> None:
    """The customer page (English) prints the answer's facts."""
    page = page_of(html)
    assert page.text["p-churn"].strip() == pct(said["churn_probability"])
    assert page.text["band"].strip() == said["risk_band"].capitalize()
    assert ("leaving" in page.text) == said["leaving_now"]
    assert ("dnc" in page.text) == said["do_not_contact"]
    assert ("complaint" in page.text) == said["open_complaint"]
    assert page.text["action"].strip() == text(ACTIONS, said["action"], "en")
    offer = said["offer"]
    if offer is None:
        assert page.text["offer"].strip() == "—"
    else:
        label = text(OFFERS, offer["product"], "en") if offer["product"] in OFFERS else None
        assert (label or "") in page.text["offer"]
        if offer["propensity"] is not None:
            assert pct(offer["propensity"]) in page.text["offer"]
        if offer["amount"] is not None:
            assert f"{offer['amount']:,.0f}" in page.text["offer"]
            assert offer["date"] in page.text["offer"]
    place = said["membership"]
    shown = page.text["list-place"].strip()
    if place is None:
        assert shown == "Not on a list this month"
    elif place["group"] == "control":
        assert shown.startswith("Control group")
    else:
        assert shown.endswith(f"#{place['rank']}")
    if place and place["kind"] == "growth":
        assert page.reasons == offer["reasons"]["en"]
    else:
        assert page.reasons == [r["text_en"] for r in said["reasons"]]


@settings(
    max_examples=240,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_list_row_the_page_and_both_api_answers_agree(month, data):
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    customer = data.draw(st.sampled_from(month["kinds"][kind]), label="customer")
    client, admin = month["client"], month["admin"]
    by_id = client.get(f"/v1/customers/{customer}", headers=admin)
    assert by_id.status_code == 200, by_id.text
    said = by_id.json()["result"]
    scored = client.post("/v1/score", json={"customer_ids": [customer]}, headers=admin)
    assert scored.status_code == 200, scored.text
    assert scored.json()["results"] == [said]  # the same answer, field for field
    assert said["source"] == "snapshot"
    if kind == "leaving":
        assert said["leaving_now"] and said["churn_probability"] == 1.0
        assert said["risk_band"] == "high"
    if kind == "control":
        assert said["action"] == "control_no_call" and said["offer"] is None
    if kind == "do_not_contact":
        assert said["action"] == "do_not_contact" and said["offer"] is None
        assert said["membership"] is None
    if customer in month["lists"].index:
        check_list_row(month["lists"].loc[customer], said, month)
    else:
        assert said["membership"] is None or said["membership"]["group"] == "control"
    check_page(client.get(f"/ui/customers/{customer}?lang=en").text, said)


def test_live_records_say_only_what_a_model_can(site, scored):
    """Feature records a CRM sends are scored live: no month facts."""
    features = pd.read_parquet(scored.out / "features.parquet").head(3)
    names = site.features()
    rows = features[names].to_dict("records")
    records = [
        {"customer_id": cid, **{n: (None if pd.isna(v) else float(v)) for n, v in row.items()}}
        for cid, row in zip(features["customer_id"], rows, strict=True)
    ]
    response = httpx.post(
        site.url + "/v1/score",
        json={"customers": records},
        headers={"Authorization": f"Bearer {site.tokens['crm']}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    for result in response.json()["results"]:
        assert result["source"] == "live"
        assert result["leaving_now"] is None and result["offer"] is None
        assert result["membership"] is None


def test_a_snapshot_scored_by_other_versions_is_not_served(scored, tmp_path, monkeypatch):
    """Readiness names both versions when the snapshot and the loaded champions differ."""
    import shutil

    from features.config import BankConfig
    from serving.api.state import ServingState

    monkeypatch.setenv("MLFLOW_TRACKING_URI", scored.env["MLFLOW_TRACKING_URI"])
    other = tmp_path / "scores"
    shutil.copytree(scored.out, other)
    scores = pd.read_parquet(other / "scores.parquet")
    served = str(scores["model_version_churn"].iloc[0])
    scores["model_version_churn"] = "999"
    scores.to_parquet(other / "scores.parquet", index=False)
    config = BankConfig().with_overrides(
        service={"scores": str(other), "keys": str(tmp_path / "keys.json")}
    )
    state = ServingState.load(config)
    assert not state.ready
    assert f"churn v999 in the snapshot, v{served} loaded" in state.problem
    same = ServingState.load(config.with_overrides(service={"scores": str(scored.out)}))
    assert same.ready, same.problem  # the untouched snapshot is served
