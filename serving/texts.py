"""Every word the lists, sheets and report show an RM, in zh and en: one home for them.

Feature labels and reason texts live in the feature catalog, product and tier names in the
bank's configuration; everything else a person reads is here, looked up with :func:`text`.
"""

from __future__ import annotations

from features.targets import CHURN

# suggested actions on a list
ACTIONS = {
    "resolve_complaint_first": ("先处理投诉", "Resolve the complaint first"),
    "assets_leaving_call_today": ("资产正在流失——今天致电", "Assets already leaving — call today"),
    "offer_renewal": ("到期续作", "Offer renewal"),
    "retention_call": ("挽留回访", "Retention call"),
    "offer_product": ("推荐产品", "Offer the product"),
    "upgrade_conversation": ("等级提升沟通", "Talk about moving up a tier"),
    "do_not_contact": ("不可联系（客户未同意营销联系）", "Do not contact (no consent)"),
    "control_no_call": (
        "本月暂不联系（对照组，用于衡量名单效果）",
        "No call this month (control group, to measure the lists' effect)",
    ),
}

# risk bands and yes/no
BANDS = {"high": ("高", "High"), "medium": ("中", "Medium"), "low": ("低", "Low")}
YES_NO = {True: ("是", "Yes"), False: ("否", "No")}
# growth offers that are not products
OFFERS = {"tier_upgrade": ("提升客户等级", "Move up a tier")}

# list columns, as headers of sheets
HEADERS = {
    "rank": ("排名", "Rank"),
    "risk_band": ("风险等级", "Risk band"),
    "leaving_now": ("资产正在流失", "Leaving now"),
    "offer_amount": ("到期金额(元)", "Maturing amount (CNY)"),
    "offer_date": ("到期日", "Maturity date"),
    "growth_offer": ("建议提升", "Growth offer"),
    "value_added": ("预计增加贡献(元)", "Value added (CNY)"),
    "customer_id": ("客户号", "Customer ID"),
    "customer_name": ("客户姓名", "Customer"),
    "tier": ("客户等级", "Tier"),
    "pyramid_level": ("金字塔层级", "Pyramid level"),
    CHURN.score: ("流失概率(%)", "Churn probability (%)"),
    "contribution_12m": ("年贡献度(元)", "Annual contribution (CNY)"),
    "expected_loss": ("预期损失(元)", "Expected loss (CNY)"),
    "saved_value": ("预计挽回贡献(元)", "Expected saved value (CNY)"),
    "reason_1": ("原因一", "Reason 1"),
    "reason_2": ("原因二", "Reason 2"),
    "reason_3": ("原因三", "Reason 3"),
    "next_best_offer": ("推荐产品", "Next best offer"),
    "offer_propensity": ("购买意向(%)", "Offer propensity (%)"),
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
    "leaving": ("资产正在流失", "Leaving now"),
    "growth": ("提升名单客户数", "Customers on growth lists"),
    "control": ("对照组客户数", "Control group"),
    "per_rm": ("各客户经理名单", "Lists by RM"),
    "list": ("名单", "List"),
    "files": ("文件", "Files"),
    "pareto_note": (
        "前20%的客户贡献了{share:.0%}的年贡献度",
        "The top 20% of customers bring {share:.0%} of the contribution",
    ),
    # charts
    "share_customers": ("客户占比(按贡献度排序)", "share of customers (by contribution)"),
    "share_contribution": ("贡献度占比", "share of contribution"),
    "pareto_chart": ("年贡献度帕累托曲线", "Pareto curve of annual contribution"),
    "top20": ("前20% → {share:.0%}", "top 20% → {share:.0%}"),
    "mean_p": ("平均3个月流失概率", "mean 3-month churn probability"),
    "probability": ("概率", "probability"),
    "loss_chart": ("预期损失(元)", "expected loss (CNY)"),
    "cny": ("元", "CNY"),
    "branch_label": ("分行 {id}", "branch {id}"),
}


def text(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    """``table[key]`` in ``lang`` ("zh" or "en"); an unknown key is shown as itself."""
    zh, en = table.get(key, (key, key))
    return zh if lang == "zh" else en


# the legend sheet of every workbook
LEGEND = {
    "title": ("说明", "Legend"),
    "retention": (
        "挽留名单：已在流失或流失概率不低于最低风险的客户，按预期损失排序",
        "Retention list: customers already leaving or at or above the minimum risk, "
        "ranked by expected loss",
    ),
    "growth": (
        "提升名单：无流失风险的客户，按可增加的贡献排序",
        "Growth list: customers not at risk, ranked by the value an RM can add",
    ),
    "expected_loss": (
        "预期损失 = 流失概率 × 年贡献度",
        "Expected loss = churn probability × annual contribution",
    ),
    "bands": (
        "风险等级：高 ≥ {high:.0%}，中 ≥ {medium:.0%}",
        "Risk bands: high ≥ {high:.0%}, medium ≥ {medium:.0%}",
    ),
    "leaving": (
        "资产正在流失：本月资产不足前3个月均值的一半，流失概率按100%计",
        "Leaving now: AUM this month below half the 3 months before; counted as a "
        "100% churn probability",
    ),
    "context": (
        "（背景）标记的原因不是可采取行动的原因，仅供参考",
        "Reasons marked (context) are not something to act on, only background",
    ),
}
