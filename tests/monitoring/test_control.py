"""The lists' effect and value on a matured month (docs/design.md §13–14): treated against
control within capacity (the called by rule left out), the contribution saved, and the uplift
model's Qini on the randomised rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.control import control_effect, uplift_qini


def month(n: int = 4_000, seed: int = 0) -> pd.DataFrame:
    """A matured month: ranked places (p_treat 0.9, 10% held back), the already leaving called
    by rule (p_treat 1), explored below the cut (p_treat 0.3); a call cuts churn from 20% to
    12% for customers with x > 0, nothing for the rest."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    kind = rng.choice(["ranked", "below", "leaving"], size=n, p=[0.5, 0.4, 0.1])
    p_treat = np.select([kind == "ranked", kind == "below"], [0.9, 0.3], 1.0)
    called = rng.random(n) < p_treat
    group = np.where(
        kind == "ranked",
        np.where(called, "treated", "control"),
        np.where(kind == "below", np.where(called, "explore", "none"), "treated"),
    )
    churn = np.where(called & (x > 0), 0.12, 0.20)
    label = (rng.random(n) < churn).astype(float)
    label[kind == "leaving"] = np.nan  # the already leaving have no label
    return pd.DataFrame(
        {
            "list_group": group,
            "p_treat": p_treat,
            "label_churn": label,
            "contribution_12m": 1_000.0,
            "uplift": np.where(x > 0, 0.08, 0.0) + rng.normal(0, 0.01, n),
        }
    )


def test_the_effect_is_measured_within_capacity_with_the_contribution_saved():
    scored = month()
    effect = control_effect(scored)
    ranked = scored["p_treat"] == 0.9
    assert effect["treated"] == int((ranked & (scored["list_group"] == "treated")).sum())
    assert effect["control"] == int((scored["list_group"] == "control").sum())
    # half the ranked customers respond: the true effect is 0.04 of 0.20
    assert effect["difference_low"] < 0.04 < effect["difference_high"]
    assert effect["contribution_saved"] == pytest.approx(
        effect["difference"] * 1_000.0 * effect["treated_labelled"]
    )


def test_the_uplift_models_qini_on_the_randomised_rows():
    figures = uplift_qini(month(8_000, 1))
    assert figures["uplift_rows"] == int(
        ((month(8_000, 1)["p_treat"] < 1) & month(8_000, 1)["label_churn"].notna()).sum()
    )
    assert figures["uplift_qini_low"] > 0  # the ranking finds those a call helps
    shuffled = month(8_000, 1).assign(
        uplift=lambda f: np.random.default_rng(5).permutation(f["uplift"])
    )
    assert uplift_qini(shuffled)["uplift_qini_low"] < 0 < uplift_qini(shuffled)["uplift_qini_high"]
