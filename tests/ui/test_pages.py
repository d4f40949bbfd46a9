"""The RM page as an RM meets it: a real `retain serve`, driven by a headless chromium."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pandas as pd

from serving.outcomes import OutcomeStore
from tests.conftest import run_retain
from tests.ui.conftest import log_in


def api_list(site, rm: str, lang: str) -> dict:
    response = httpx.post(
        site["url"] + "/retention_list",
        json={"rm_id": rm, "lang": lang},
        headers={"Authorization": f"Bearer {site['tokens'][rm]}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def shown_ids(page) -> list[str]:
    rows = page.locator("#list tbody tr")
    return [rows.nth(i).get_attribute("data-customer-id") for i in range(rows.count())]


def test_no_session_is_sent_to_the_login_page(site, context):
    page = context.new_page()
    for path in ("/ui", "/ui/list", f"/ui/customers/{site['scores']['customer_id'].iloc[0]}"):
        page.goto(site["url"] + path)
        assert page.url.endswith("/ui/login"), path
        assert page.locator("#key").is_visible()
    page.fill("#key", "rk_not-a-key")
    page.click("#login")
    assert page.locator("#login-error").is_visible()


def test_my_list_shows_the_rows_of_the_api_in_its_order(site, context):
    rm = site["books"][0]
    page = context.new_page()
    log_in(page, site, rm)
    page.goto(site["url"] + "/ui/list?lang=en")
    expected = [str(e["customer_id"]) for e in api_list(site, rm, "en")["entries"]]
    assert expected and shown_ids(page) == expected
    cookie = next(c for c in context.cookies() if c["name"] == "retain_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    audit = [json.loads(line) for line in (site["folder"] / "audit.log").read_text().splitlines()]
    assert any(
        a["endpoint"] == "/ui/list"
        and a.get("list_id") == rm  # a page asked without a session names no list
        and [str(c) for c in a["customer_ids"]] == expected
        and a["key"] == f"rm-{rm}"
        for a in audit
    )


def test_sorting_and_filters_keep_to_the_list(site, context):
    rm = site["books"][0]
    page = context.new_page()
    log_in(page, site, rm)
    entries = api_list(site, rm, "en")["entries"]
    page.goto(site["url"] + "/ui/list?lang=en&sort=p_churn&order=asc")
    by_risk = sorted(entries, key=lambda e: e["p_churn"])  # stable, as the page sorts
    assert shown_ids(page) == [str(e["customer_id"]) for e in by_risk]
    action = entries[0]["action"]
    page.goto(site["url"] + f"/ui/list?lang=en&action={action}")
    assert shown_ids(page) == [str(e["customer_id"]) for e in entries if e["action"] == action]


def test_the_language_switch_translates_the_labels(site, context):
    page = context.new_page()
    log_in(page, site, site["books"][0])
    page.goto(site["url"] + "/ui/list?lang=en")
    assert "My lists" in page.inner_text("h1") and page.inner_text("#lang-switch") == "中文"
    headers_en = page.inner_text("#list thead")
    page.click("#lang-switch")
    assert "我的名单" in page.inner_text("h1")
    headers_zh = page.inner_text("#list thead")
    assert "原因" in headers_zh and "Why" in headers_en and "Why" not in headers_zh
    page.goto(site["url"] + "/ui/list")  # the choice is remembered
    assert "我的名单" in page.inner_text("h1")


def test_the_customer_page_shows_scores_and_reasons(site, context):
    rm = site["books"][0]
    first = api_list(site, rm, "en")["entries"][0]
    page = context.new_page()
    log_in(page, site, rm)
    page.goto(site["url"] + "/ui/list?lang=en")
    page.click(f"#list tbody tr[data-customer-id='{first['customer_id']}'] a")
    page.wait_for_url(f"**/ui/customers/{first['customer_id']}**")
    api = httpx.get(
        site["url"] + f"/customers/{first['customer_id']}",
        timeout=60,
        headers={"Authorization": f"Bearer {site['tokens'][rm]}"},
    ).json()
    result = api["result"]
    assert page.inner_text("#p-churn") == f"{result['churn_probability'] * 100:.1f}%"
    reasons = page.locator("#reasons ol li").all_inner_texts()
    assert [r.removesuffix(" (context)") for r in reasons] == [
        r["text_en"] for r in result["reasons"]
    ]
    assert page.locator("#history svg.chart").count() == 2
    held = set(page.inner_text("#held").split(", "))
    offered = set(page.locator("#propensities dt").all_inner_texts())
    assert offered and not offered & held  # a product the customer has is nothing to offer


def test_an_outcome_is_recorded_once_shown_and_exported(site, context, scored, tmp_path):
    rm = site["books"][0]
    customer = api_list(site, rm, "en")["entries"][1]["customer_id"]
    page = context.new_page()
    log_in(page, site, rm)
    page.goto(site["url"] + "/ui/list?lang=en")
    row = f"#list tbody tr[data-customer-id='{customer}']"
    assert page.locator(f"{row} .contacted-mark").count() == 0
    page.goto(site["url"] + f"/ui/customers/{customer}?lang=en")
    # nothing is chosen for the RM: a click on Save alone records nothing
    assert page.input_value("#o-channel") == page.input_value("#o-result") == ""
    assert not page.is_checked("#o-reached-yes") and not page.is_checked("#o-reached-no")
    page.click("#o-save")
    assert page.locator("#saved").count() == 0 and not OutcomeStore(site["outcomes"]).for_customer(
        customer
    )
    page.select_option("#o-channel", "visit")
    page.check("#o-reached-yes")
    page.select_option("#o-result", "stays")
    page.fill("#o-next", "call back in May")
    page.fill("#o-note", "renewing the deposit")
    fields = {
        name: page.input_value(f"#outcome-form [name={name}]")
        for name in ("csrf", "request_id", "channel", "result", "next_step", "note")
    } | {"reached": "yes"}
    page.click("#o-save")
    assert page.locator("#saved").is_visible()
    newest = page.locator("#contact-table tbody tr").first
    assert "renewing the deposit" in newest.inner_text()
    # the time in the bank's local time (Asia/Shanghai), not the store's UTC
    recorded = OutcomeStore(site["outcomes"]).for_customer(customer)[0].recorded_at
    local = datetime.fromisoformat(recorded).astimezone(ZoneInfo("Asia/Shanghai"))
    assert newest.locator(".when").inner_text() == local.strftime("%Y-%m-%d %H:%M")
    # the list row carries the contact: its mark, when and the result
    page.goto(site["url"] + "/ui/list?lang=en")
    assert page.locator(f"{row} .contacted-mark").is_visible()
    assert page.inner_text(f"{row} td.contact") == f"{local:%Y-%m-%d %H:%M}\nStays"
    # the same form sent twice (a double click, a reload) is stored once
    again = page.request.post(site["url"] + f"/ui/customers/{customer}/outcomes", form=fields)
    assert again.status == 200
    stored = OutcomeStore(site["outcomes"]).for_customer(customer)
    assert [(o.channel, o.result, o.note, o.recorded_by) for o in stored] == [
        ("visit", "stays", "renewing the deposit", f"rm-{rm}")
    ]
    # and in the export: an interactions part of (a copy of) the warehouse
    warehouse = tmp_path / "warehouse"
    shutil.copytree(scored.bank, warehouse)
    result = run_retain(
        ["outcomes", "export", "--store", str(site["outcomes"]), "--warehouse", str(warehouse)],
        scored.env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    parts = list((warehouse / "interactions").glob("part-outcomes-*.parquet"))
    assert len(parts) == 1
    exported = pd.read_parquet(parts[0])
    mine = exported[exported["customer_id"] == customer]
    assert mine["outcome"].tolist() == ["stays"] and mine["kind"].tolist() == ["visit"]


def test_downloads_are_in_the_pages_language_and_open(site, context, tmp_path):
    page = context.new_page()
    log_in(page, site, site["books"][0])
    page.goto(site["url"] + "/ui/list?lang=en")
    with page.expect_download() as download:
        page.click("#dl-xlsx")
    path = tmp_path / "list.xlsx"
    download.value.save_as(path)
    sheet = openpyxl.load_workbook(path).worksheets[0]
    assert sheet.max_row - 1 == len(api_list(site, site["books"][0], "en")["entries"])
    assert sheet["A1"].value == "Rank"
    page.goto(site["url"] + "/ui/list?lang=zh")  # the snapshot was scored in English
    for fmt in ("csv", "xlsx"):
        with page.expect_download() as download:
            page.click(f"#dl-{fmt}")
        path = tmp_path / f"list_zh.{fmt}"
        download.value.save_as(path)
        if fmt == "csv":
            header = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
        else:
            header = [c.value for c in openpyxl.load_workbook(path).worksheets[0][1]]
        assert header[:3] == ["排名", "客户号", "客户姓名"] and "原因一" in header, header


def test_another_rms_customer_and_list_are_refused(site, context):
    mine, theirs = site["books"]
    scores = site["scores"]
    other = scores.loc[scores["rm_id"] == theirs, "customer_id"].iloc[0]
    page = context.new_page()
    log_in(page, site, mine)
    for path in (f"/ui/customers/{other}", f"/ui/list?rm_id={theirs}", f"/ui/lists/{theirs}.csv"):
        response = page.goto(site["url"] + path)
        assert response.status == 403, path
        assert page.locator("#error-title").is_visible()
    log_in(page, site, "admin")  # an admin opens any RM's list
    assert page.goto(site["url"] + f"/ui/list?rm_id={theirs}").status == 200
    assert shown_ids(page)


def test_a_form_without_its_csrf_token_is_refused(site, context):
    rm = site["books"][0]
    customer = api_list(site, rm, "en")["entries"][0]["customer_id"]
    page = context.new_page()
    log_in(page, site, rm)
    url = site["url"] + f"/ui/customers/{customer}/outcomes"
    form = {"channel": "call", "reached": "yes", "result": "stays", "note": "forged"}
    assert page.request.post(url, form=form).status == 403
    assert page.request.post(url, form={**form, "csrf": "guess"}).status == 403
    assert page.request.post(site["url"] + "/ui/logout", form={}).status == 403
    stored = OutcomeStore(site["outcomes"]).for_customer(customer)
    assert not any(o.note == "forged" for o in stored)


FITS = """() => {
    const table = document.querySelector('#list'), box = document.querySelector('#list-box');
    return [table.scrollWidth, box.clientWidth, document.documentElement.scrollWidth];
}"""


def test_the_list_fits_a_laptop_without_sideways_scrolling(site, browser):
    laptop = browser.new_context(viewport={"width": 1366, "height": 768})
    page = laptop.new_page()
    log_in(page, site, site["books"][0])
    for lang in ("en", "zh"):
        for kind in ("retention", "growth"):
            page.goto(site["url"] + f"/ui/list?lang={lang}&kind={kind}")
            table, box, document = page.evaluate(FITS)
            assert table <= box and document <= 1366, (lang, kind, table, box, document)
    laptop.close()


def test_on_a_phone_every_card_shows_what_to_do_and_the_offer(site, browser):
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    log_in(page, site, site["books"][0])
    for kind in ("retention", "growth"):
        page.goto(site["url"] + f"/ui/list?lang=zh&kind={kind}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        cards = page.locator("#list tbody tr")
        assert cards.count() > 0
        for i in range(cards.count()):
            card = cards.nth(i)
            for part in (".action", ".offer", "td.why"):
                box = card.locator(part).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (kind, i, part)
        # what to do comes before the figures: a growth card never leads with churn risk
        first = cards.first
        assert (
            first.locator("td.todo").bounding_box()["y"]
            < first.locator("td.value").bounding_box()["y"]
        )
        assert "流失概率" not in first.inner_text() or kind == "retention"
    phone.close()


def test_the_customer_page_shows_the_warehouses_contacts_newest_first(site, context):
    rm = site["books"][0]
    warehouse = pd.read_parquet(site["scores_dir"] / "contacts.parquet")
    mine = set(site["scores"].loc[site["scores"]["rm_id"] == rm, "customer_id"])
    customer = (
        warehouse.loc[warehouse["customer_id"].isin(mine), "customer_id"].value_counts().index[0]
    )
    expected = (
        warehouse[warehouse["customer_id"] == customer]
        .sort_values("ts", ascending=False)["ts"]
        .dt.strftime("%Y-%m-%d %H:%M")
        .tolist()
    )
    page = context.new_page()
    log_in(page, site, rm)
    page.goto(site["url"] + f"/ui/customers/{customer}?lang=en")
    shown = page.locator("#contact-table tbody td.when").all_inner_texts()
    assert [t for t in shown if t in expected] == expected  # all of them, newest first
    assert shown == sorted(shown, reverse=True)
    months = pd.read_parquet(
        site["scores_dir"] / "history.parquet", filters=[("customer_id", "==", customer)]
    )
    assert len(months) == 12  # a customer contacted this often has been here all year
    assert page.locator("#history svg.chart rect").count() == 2 * len(months)  # AUM, contribution
