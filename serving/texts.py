"""Every word the lists, sheets and report show an RM, in zh and en: one home for them.

Feature labels and reason texts live in the feature catalog, product and tier names in the
bank's configuration; everything else a person reads is here, looked up with :func:`text`.
"""

from __future__ import annotations

# suggested actions on a list
ACTIONS = {
    "resolve_complaint_first": ("先处理投诉", "Resolve the complaint first"),
    "offer_renewal": ("到期续作", "Offer renewal"),
    "retention_call": ("挽留回访", "Retention call"),
}

# list columns, as headers of sheets
HEADERS = {
    "rank": ("排名", "Rank"),
    "customer_id": ("客户号", "Customer ID"),
    "customer_name": ("客户姓名", "Customer"),
    "tier": ("客户等级", "Tier"),
    "pyramid_level": ("金字塔层级", "Pyramid level"),
    "p_churn": ("流失概率", "Churn probability"),
    "contribution_12m": ("年贡献度(元)", "Annual contribution (CNY)"),
    "expected_loss": ("预期损失(元)", "Expected loss (CNY)"),
    "reason_1": ("原因一", "Reason 1"),
    "reason_2": ("原因二", "Reason 2"),
    "reason_3": ("原因三", "Reason 3"),
    "next_best_offer": ("推荐产品", "Next best offer"),
    "offer_propensity": ("购买意向", "Offer propensity"),
    "action": ("建议行动", "Suggested action"),
}

# the portfolio report
REPORT = {
    "title": ("客户流失风险组合报告", "Portfolio churn-risk report"),
    "cutoff": ("数据截至", "Data as of"),
    "scored": ("评分客户数", "Customers scored"),
    "high": ("高风险客户", "High-risk customers"),
    "loss": ("预期损失合计(元)", "Total expected loss (CNY)"),
    "lists": ("名单数", "Lists"),
    "listed": ("名单客户数", "Customers on lists"),
    "pareto": ("贡献度帕累托曲线", "Pareto curve of contribution"),
    "tier": ("各等级风险", "Risk by tier"),
    "branch": ("各分行风险与预期损失", "Risk and expected loss by branch"),
    "reasons": ("全行最常见流失原因(名单客户)", "Most common reasons bank-wide (listed customers)"),
    "reason": ("原因", "Reason"),
    "count": ("客户数", "Customers"),
    "models": ("模型版本", "Model versions"),
}


def text(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    """``table[key]`` in ``lang`` ("zh" or "en"); an unknown key is shown as itself."""
    zh, en = table.get(key, (key, key))
    return zh if lang == "zh" else en
