"""The compiled loops behind the trees' tables (numba, no GIL): each row's pattern of decisions
at a tree's nodes, then the tree's leaf (``models.compiled_trees``) or its contributions
(``models.tree_shap``) looked up by it.

Imported only by a process that scores or explains many rows: numba's import and, at the first
call, the compilation (cached on disk beside this module) are not paid by the API's workers.

A block of :data:`BLOCK_ROWS` rows goes through one tree at a time: the decisions at one node
are one comparison over a contiguous run of a column (the input is column-major), which the
compiler vectorises; what a tree gives is added tree by tree in the booster's order, so the
sums are the bits of the row-by-row sums.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from models.tree_rules import ZERO

BLOCK_ROWS = 256  # rows a tree is looked up for together (a column run stays in the caches)


def _kernel(function):
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # nowhere writable for the cache: compiled in each process
        return numba.njit(nogil=True)(function)


def on_threads(rows: int, work: Callable[[int, int], None]) -> None:
    """``work(start, stop)`` over contiguous runs of ``rows``, one per core the process may use
    (the kernels leave the GIL)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, min(cores or 1, math.ceil(rows / BLOCK_ROWS)))
    cuts = np.linspace(0, rows, threads + 1).astype(np.intp).tolist()
    if threads == 1:
        work(0, rows)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, cuts[:-1], cuts[1:]))


@_kernel
def _patterns(x, first, n, feature, threshold, zero_missing, missing_left, pattern):
    """``pattern[r]``: bit j set when row ``first + r`` goes left at node j — LightGBM's rule:
    a value within ``ZERO`` of 0 is read as 0, a missing value goes the node's missing way
    (type Zero: 0 is missing too; type None: where 0 goes, folded into ``missing_left``)."""
    pattern[:n] = 0
    for j in range(feature.shape[0]):
        column = x[first : first + n, feature[j]]
        cut, zero, left_if_missing = threshold[j], zero_missing[j], missing_left[j]
        for r in range(n):
            v = column[r]
            if abs(v) <= ZERO:  # NaN stays NaN
                v = 0.0
            missing = (v != v) | (zero & (v == 0.0))
            left = (missing & left_if_missing) | ((not missing) & (v <= cut))
            pattern[r] |= np.intp(left) << j


@_kernel
def raw_scores(x, start, stop, feature, threshold, zero_missing, missing_left, leaf, sigmoid, out):
    """Rows ``start:stop`` of ``x``: LightGBM's probability (its sigmoid of the leaves' sum)."""
    trees = feature.shape[0]
    pattern = np.empty(BLOCK_ROWS, dtype=np.intp)
    raw = np.empty(BLOCK_ROWS)
    for first in range(start, stop, BLOCK_ROWS):
        n = min(BLOCK_ROWS, stop - first)
        raw[:n] = 0.0
        for t in range(trees):
            _patterns(
                x, first, n, feature[t], threshold[t], zero_missing[t], missing_left[t], pattern
            )
            for r in range(n):
                raw[r] += leaf[t, pattern[r]]
        for r in range(n):
            out[first + r] = 1.0 / (1.0 + math.exp(-sigmoid * raw[r]))


@_kernel
def contributions(
    x, start, stop, feature, threshold, zero_missing, missing_left, columns, table, out
):
    """Rows ``start:stop`` of ``x``: each tree's table row for the row's pattern added to the
    columns it names (``out``: rows × columns, a last column for the tables' padding)."""
    trees, k = feature.shape
    pattern = np.empty(BLOCK_ROWS, dtype=np.intp)
    for first in range(start, stop, BLOCK_ROWS):
        n = min(BLOCK_ROWS, stop - first)
        for t in range(trees):
            _patterns(
                x, first, n, feature[t], threshold[t], zero_missing[t], missing_left[t], pattern
            )
            base = t << k
            for slot in range(columns.shape[1]):
                column = columns[t, slot]
                for r in range(n):
                    out[first + r, column] += table[base + pattern[r], slot]
