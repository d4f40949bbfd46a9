"""How LightGBM's trees decide, as the tables of ``models.tree_shap`` and
``models.compiled_trees`` (and the loops of ``models.tree_kernels``) read them: the missing
types, what LightGBM reads as zero, and a tree's paths from its ``dump_model`` structure."""

from __future__ import annotations

import numpy as np

KINDS = {"None": 0, "Zero": 1, "NaN": 2}  # LightGBM's missing types
# LightGBM's kZeroThreshold (1e-35 as a C float): reading its input, LightGBM takes any value
# of at most this size as 0 — a missing value for a "Zero" missing type
ZERO = float(np.float32(1e-35))


def missing_goes_left(kind: np.ndarray, threshold: np.ndarray, default_left: np.ndarray):
    """Where a missing value goes at each node: the node's default way, except for missing
    type None, which reads it as 0 (and sends it where 0 goes)."""
    return np.where(kind == KINDS["None"], 0.0 <= threshold, default_left)


SplitPath = list[tuple[int, bool, float]]  # (node, went left, share of its training rows that did)


def tree_paths(root: dict) -> tuple[list[dict], list[tuple[float, SplitPath]]] | None:
    """(internal nodes in walk order, [(leaf value, its path)…]) of a tree; None for a split
    the tables do not know (categorical, a linear tree's leaf)."""
    nodes: list[dict] = []
    leaves: list[tuple[float, SplitPath]] = []

    def walk(node: dict, path: SplitPath) -> bool:
        if "leaf_coeff" in node:  # a linear tree's leaf
            return False
        if "leaf_value" in node:
            leaves.append((node["leaf_value"], path))
            return True
        if node.get("decision_type") != "<=":
            return False
        j = len(nodes)
        nodes.append(node)
        count = node["internal_count"]
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            share = _count(child) / count if count else 0.0
            if not walk(child, [*path, (j, left, share)]):
                return False
        return True

    return (nodes, leaves) if walk(root, []) else None


def _count(node: dict) -> float:
    return node["leaf_count"] if "leaf_value" in node else node["internal_count"]
