"""The leakage guard on inputs: a copied label is refused, a legitimate threshold is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.dataset import LeakageError, refuse_perfect_predictors

Y = np.array([0, 1] * 50)


def test_a_copied_label_is_refused_by_name():
    x = pd.DataFrame({"aum_avg_1m": np.arange(100.0), "open_complaints": Y.astype(float)})
    with pytest.raises(LeakageError, match="open_complaints"):
        refuse_perfect_predictors(x, Y)


def test_a_continuous_input_that_separates_the_classes_is_allowed():
    # e.g. private banking is opened exactly when AUM crosses 6M
    aum = np.where(Y == 1, 7e6, 1e6) + np.arange(100.0)
    refuse_perfect_predictors(pd.DataFrame({"aum_avg_1m": aum}), Y)
