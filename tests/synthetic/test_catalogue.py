"""A synthetic bank of another shape: its own catalogue, tier ladder and string ids."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from features.profile import profile_bank
from features.schema import validate_warehouse
from features.sources.files import read_meta, read_table, table_files
from retain.config import load_config
from synthetic.bank import write_bank
from synthetic.config import (
    BEHAVIOURS,
    DEFAULT_CATALOGUE,
    SynthConfig,
    SynthConfigError,
    SynthProduct,
    synth_config_from_toml,
)
from synthetic.products import Catalogue
from tests import retain_process

ROOT = Path(__file__).resolve().parents[2]
OTHER_BANK = ROOT / "docs" / "other_bank.toml"


def _other_bank_config(**overrides) -> SynthConfig:
    payload = tomllib.loads(OTHER_BANK.read_text(encoding="utf-8"))
    return synth_config_from_toml(payload, overrides=overrides)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_default_catalogue_is_the_nine_products_of_the_default_bank():
    by_code = {p.product: p for p in DEFAULT_CATALOGUE}
    assert list(by_code) == [
        "demand_deposit",
        "time_deposit",
        "wealth_management",
        "mutual_fund",
        "insurance",
        "credit_card",
        "consumer_loan",
        "mortgage",
        "private_banking_service",
    ]
    assert [p.kind for p in DEFAULT_CATALOGUE].count("asset") == 5
    assert by_code["credit_card"].kind == "service"
    assert (by_code["credit_card"].margin_rate, by_code["credit_card"].fee_per_year) == (0.06, 300)
    assert by_code["private_banking_service"].fee_per_year == 5000
    assert by_code["wealth_management"].names.zh == "理财"
    assert [p.behaviour for p in DEFAULT_CATALOGUE].count("demand") == 1
    assert {p.behaviour for p in DEFAULT_CATALOGUE} == set(BEHAVIOURS)


def test_a_behaviour_used_once_keeps_its_shape_and_shared_ones_differ():
    default = Catalogue.of(DEFAULT_CATALOGUE)
    shapes = [BEHAVIOURS[p.behaviour].propensity.intercept for p in DEFAULT_CATALOGUE]
    assert np.allclose(default.intercept, shapes)
    twins = (
        DEFAULT_CATALOGUE[0],
        SynthProduct(product="td_a", behaviour="term_deposit"),
        SynthProduct(product="td_b", behaviour="term_deposit"),
    )
    shared = Catalogue.of(twins)
    assert shared.intercept[1] != shared.intercept[2]
    assert shared.maturing == (1, 2)
    assert np.array_equal(Catalogue.of(twins).intercept, shared.intercept)  # position, not luck


def test_catalogue_problems_are_named():
    with pytest.raises(SynthConfigError, match="exactly one product must have behaviour 'demand'"):
        synth_config_from_toml(
            {
                "synthetic": {
                    "products": [
                        {"product": "a", "behaviour": "demand"},
                        {"product": "b", "behaviour": "demand"},
                    ]
                }
            }
        )
    with pytest.raises(SynthConfigError, match=r"synthetic\.products\.0\.colour: unknown key"):
        synth_config_from_toml(
            {
                "synthetic": {
                    "products": [
                        {"product": "a", "behaviour": "demand", "colour": "red"},
                    ]
                }
            }
        )
    with pytest.raises(SynthConfigError, match="unknown behaviour 'warp'"):
        synth_config_from_toml({"synthetic": {"products": [{"product": "a", "behaviour": "warp"}]}})
    with pytest.raises(SynthConfigError, match="does not fit behaviour 'mortgage'"):
        synth_config_from_toml(
            {
                "synthetic": {
                    "products": [
                        {"product": "a", "behaviour": "demand"},
                        {"product": "b", "behaviour": "mortgage", "kind": "asset"},
                    ]
                }
            }
        )
    with pytest.raises(SynthConfigError, match=r"synthetic\.custmers: unknown key"):
        synth_config_from_toml({"synthetic": {"custmers": 10}})
    with pytest.raises(SynthConfigError, match="month-end"):
        synth_config_from_toml({"synthetic": {"end": "2024-12-15"}})


def test_the_other_bank_configuration_is_a_valid_retain_toml():
    config = load_config(OTHER_BANK)
    assert config.tiers.names == ("standard", "silver", "gold", "private")
    assert config.tiers.bounds == (50_000, 500_000, 5_000_000)
    synth = _other_bank_config()
    assert synth.ids == "string"
    assert len(synth.products) == 11


@pytest.fixture(scope="module")
def other_bank(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("banks") / "other"
    write_bank(_other_bank_config(customers=4_000), out, ladder=load_config(OTHER_BANK).tiers)
    return out


def test_the_other_bank_lists_its_eleven_products_with_names(other_bank):
    products = read_table(other_bank, "products")
    assert list(products.columns) == [
        "product",
        "kind",
        "margin_rate",
        "fee_per_year",
        "name_zh",
        "name_en",
    ]
    assert len(products) == 11
    assert products.set_index("product").loc["gold_account", "name_en"] == "Gold account"
    meta = read_meta(other_bank)
    assert [p["behaviour"] for p in meta["products"]].count("demand") == 1
    assert [t["name"] for t in meta["tiers"]] == ["standard", "silver", "gold", "private"]
    truth = pq.read_schema(table_files(other_bank, "truth")[0]).names
    assert {f"p_buy_3m_{p}" for p in products["product"]} <= set(truth)


def test_the_other_bank_has_string_ids_with_leading_zeros(other_bank):
    customers = read_table(other_bank, "customers", ["customer_id"])["customer_id"]
    assert customers.map(type).eq(str).all()
    assert customers.str.fullmatch(r"C0\d{9}").all()
    assert customers.is_unique
    for table, column, prefix in [
        ("transactions", "txn_id", "T"),
        ("interactions", "interaction_id", "I"),
        ("complaints", "complaint_id", "K"),
    ]:
        ids = read_table(other_bank, table, [column, "customer_id"])
        assert ids[column].str.fullmatch(prefix + r"\d{15}").all(), table
        assert ids[column].is_unique, table
        assert ids["customer_id"].isin(customers).all(), table


def test_the_other_bank_passes_the_warehouse_checks(other_bank):
    assert validate_warehouse(other_bank) == []


@pytest.fixture(scope="module")
def other_profile(other_bank):
    return profile_bank(other_bank, load_config(OTHER_BANK))


def test_every_product_of_the_other_bank_is_held_by_some_but_not_all(other_profile):
    rates = other_profile.holding_rates.set_index("product")["rate"]
    assert len(rates) == 11
    others = rates.drop("current_account")
    assert others.between(0.01, 0.95).all(), others


def test_the_other_bank_churns_one_to_three_percent_a_month(other_profile):
    assert 0.01 <= other_profile.monthly_churn <= 0.03


def test_the_other_bank_is_deterministic(tmp_path):
    config = _other_bank_config(customers=1_500, months=6, seed=9)
    write_bank(config, tmp_path / "a")
    write_bank(config, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_retain_synth_reads_the_bank_from_a_configuration_file(tmp_path):
    out, summary = tmp_path / "wh", tmp_path / "synth.json"
    result = retain_process.run(
        [
            "synth",
            "--config",
            str(OTHER_BANK),
            "--customers",
            "2000",
            "--out",
            str(out),
            "--json",
            str(summary),
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(summary.read_text())
    assert payload["rows"]["customers"] == 2000  # the option wins over the file's 20,000
    assert payload["config"]["ids"] == "string"
    assert len(payload["months"]) == 24
    assert len(read_table(out, "products")) == 11
    assert read_table(out, "customers", ["customer_id"])["customer_id"].str.startswith("C0").all()
