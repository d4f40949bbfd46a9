"""The synthetic bank's organisation: branches → sub-branches → outlets, and its RMs.

Scaled with the number of customers: about one outlet per 2,500 customers, four outlets per
sub-branch, three sub-branches per branch, and enough RMs per outlet that a book holds about
250 customers (books of 100–400).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CITIES: tuple[tuple[str, int], ...] = (
    ("上海", 1), ("北京", 1), ("深圳", 1), ("广州", 1), ("杭州", 2), ("南京", 2), ("成都", 2),
    ("武汉", 2), ("苏州", 2), ("西安", 2), ("长沙", 3), ("郑州", 3), ("济南", 3), ("合肥", 3),
    ("福州", 3), ("昆明", 3), ("南宁", 4), ("贵阳", 4), ("兰州", 4), ("银川", 4),
)  # fmt: skip
SURNAMES = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
)
GIVEN = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏建国文辉林晨宇浩然欣怡子涵思雨"
)
CUSTOMERS_PER_OUTLET = 2_500
OUTLETS_PER_SUB_BRANCH = 4
SUB_BRANCHES_PER_BRANCH = 3
TARGET_BOOK = 250
EXPECTED_ASSIGNED_SHARE = 0.45


@dataclass(frozen=True)
class Org:
    """The org tree and RMs, plus what customer generation needs to place customers."""

    org: pd.DataFrame
    rms: pd.DataFrame
    outlet_weights: np.ndarray  # share of customers per outlet
    outlet_city_tier: np.ndarray
    outlet_city: np.ndarray
    rms_by_outlet: tuple[np.ndarray, ...]  # RM row indices per outlet


def random_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Plausible Chinese names: a surname and one or two given characters."""
    surname = rng.choice(np.array(SURNAMES), n)
    first = rng.choice(np.array(GIVEN), n)
    second = np.where(rng.random(n) < 0.6, rng.choice(np.array(GIVEN), n), "")
    return np.char.add(np.char.add(surname, first), second).astype(object)


def build_org(n_customers: int, rng: np.random.Generator) -> Org:
    n_outlets = max(2, round(n_customers / CUSTOMERS_PER_OUTLET))
    n_subs = max(2, math.ceil(n_outlets / OUTLETS_PER_SUB_BRANCH))
    n_branches = max(1, math.ceil(n_subs / SUB_BRANCHES_PER_BRANCH))
    sub_of_outlet = np.arange(n_outlets) % n_subs
    branch_of_sub = np.arange(n_subs) % n_branches
    branch_of_outlet = branch_of_sub[sub_of_outlet]
    city_index = branch_of_outlet % len(CITIES)
    cities = np.array([c for c, _ in CITIES], dtype=object)[city_index]
    tiers = np.array([t for _, t in CITIES], dtype=np.int8)[city_index]
    outlet_ids = np.array([f"O{i + 1:04d}" for i in range(n_outlets)], dtype=object)
    org = pd.DataFrame(
        {
            "outlet_id": outlet_ids,
            "outlet_name": [f"{c}{i + 1}号网点" for i, c in enumerate(cities)],
            "sub_branch_id": [f"S{s + 1:03d}" for s in sub_of_outlet],
            "branch_id": [f"B{b + 1:02d}" for b in branch_of_outlet],
            "city": cities,
            "city_tier": tiers,
        }
    )
    weights = rng.lognormal(0.0, 0.3, n_outlets)
    weights /= weights.sum()

    rm_outlet: list[int] = []
    for o in range(n_outlets):
        expected_book = n_customers * weights[o] * EXPECTED_ASSIGNED_SHARE
        rm_outlet += [o] * max(1, round(expected_book / TARGET_BOOK))
    rm_outlet_arr = np.array(rm_outlet)
    n_rms = len(rm_outlet_arr)
    rms = pd.DataFrame(
        {
            "rm_id": [f"RM{i + 1:05d}" for i in range(n_rms)],
            "outlet_id": outlet_ids[rm_outlet_arr],
            "name": random_names(rng, n_rms),
            "capacity": rng.integers(30, 81, n_rms).astype(np.int32),
        }
    )
    by_outlet = tuple(np.flatnonzero(rm_outlet_arr == o) for o in range(n_outlets))
    return Org(org, rms, weights, tiers, cities, by_outlet)
