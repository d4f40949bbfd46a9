"""The page's own words in zh and en (list columns and actions come from :mod:`serving.texts`,
tiers and products from the bank's configuration)."""

from __future__ import annotations

from serving.texts import text

WORDS = {
    "title": ("客户经理工作台", "RM workbench"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "api_key": ("API 密钥", "API key"),
    "login_help": (
        "请输入您的 API 密钥（与接口使用的密钥相同）。",
        "Enter your API key (the same key the API takes).",
    ),
    "bad_key": ("密钥无效、已撤销或已过期。", "Unknown, revoked or expired key."),
    "no_page": ("此密钥不能登录工作台。", "This key cannot log in to the workbench."),
    "my_lists": ("我的名单", "My lists"),
    "retention": ("挽留名单", "Retention list"),
    "growth": ("提升名单", "Growth list"),
    "rm": ("客户经理", "RM"),
    "open": ("打开", "Open"),
    "as_of": ("数据截至", "Data as of"),
    "rows": ("位客户", "customers"),
    "filter": ("筛选", "Filter"),
    "all": ("全部", "All"),
    "band": ("风险等级", "Risk band"),
    "leaving_now": ("资产正在流失", "Leaving now"),
    "action": ("建议行动", "Action"),
    "apply": ("应用", "Apply"),
    "download": ("下载", "Download"),
    "no_rows": ("没有符合条件的客户。", "No customer matches."),
    "no_list": ("此快照没有提升名单。", "This snapshot has no growth list."),
    "customer": ("客户", "Customer"),
    "scores": ("评分", "Scores"),
    "p_churn": ("流失概率", "Churn probability"),
    "p_upgrade": ("升级概率", "Upgrade probability"),
    "propensities": ("产品购买意向", "Product propensities"),
    "reasons": ("主要原因", "Top reasons"),
    "products": ("持有产品", "Products held"),
    "holds": ("持有", "Held"),
    "maturities": ("到期", "Maturities"),
    "maturing_product": ("到期产品", "Maturing product"),
    "maturing_date": ("到期日", "Maturity date"),
    "maturing_30d": ("30天内到期金额(元)", "Maturing in 30 days (CNY)"),
    "none": ("无", "None"),
    "history": ("资产与贡献", "AUM and contribution"),
    "aum_avg_12m": ("近12个月日均资产", "AUM, 12-month average"),
    "aum_avg_3m": ("近3个月日均资产", "AUM, 3-month average"),
    "aum_avg_1m": ("上月日均资产", "AUM, last month"),
    "contribution_12m": ("年贡献度", "Annual contribution"),
    "cny": ("元", "CNY"),
    "contacts": ("联系记录", "Past contacts"),
    "no_contacts": ("尚无联系记录。", "No contact recorded yet."),
    "record": ("记录联系结果", "Record an outcome"),
    "channel": ("联系方式", "Channel"),
    "reached": ("是否联系上", "Reached"),
    "result": ("结果", "Result"),
    "next_step": ("下一步", "Next step"),
    "note": ("备注", "Note"),
    "save": ("保存", "Save"),
    "saved": ("已保存。", "Saved."),
    "time": ("时间", "Time"),
    "by": ("记录人", "By"),
    "outcomes_off": ("此服务未配置联系结果存储。", "This service has no outcome store."),
    "forbidden": ("无权访问", "Not allowed"),
    "forbidden_text": (
        "此客户或名单不在您的管辖范围内。",
        "This customer or list is not in your book.",
    ),
    "csrf_text": (
        "表单已过期或无效，请重新打开页面后再提交。",
        "The form is stale or not from this page; open the page again and resubmit.",
    ),
    "not_found": ("未找到", "Not found"),
    "not_found_text": ("快照中没有此客户或名单。", "No such customer or list in the snapshot."),
    "not_ready": ("服务尚未就绪。", "The service is not ready."),
    "bad_request": ("请求无效", "Invalid request"),
    "bad_request_text": (
        "此页面的参数无效，请从名单重新打开。",
        "A parameter of this page is not valid; open it again from the list.",
    ),
    "too_long": (
        "{field}最多{limit}个字符（现有{got}个）。",
        "{field}: at most {limit} characters ({got} given).",
    ),
    "back": ("返回名单", "Back to the list"),
    "yes": ("是", "Yes"),
    "no": ("否", "No"),
    "high": ("高", "High"),
    "medium": ("中", "Medium"),
    "low": ("低", "Low"),
    "context": ("背景", "context"),
    "language": ("English", "中文"),
    "sort": ("排序", "Sort"),
    "offer": ("推荐", "Offer"),
    "saved_value": ("预计挽回贡献", "Expected saved value"),
    "place": ("名单", "List"),
    "not_listed": ("本月不在名单上", "Not on a list this month"),
    "rank": ("第{rank}位", "#{rank}"),
    "held_back": ("对照组（本月不联系）", "Control group (no call this month)"),
    "do_not_contact": ("不可联系", "Do not contact"),
    "open_complaint": ("有未解决投诉", "Open complaint"),
    "maturing_amount": ("到期金额", "maturing"),
    # the list's columns: who, why, what to do, value, last contact
    "why": ("原因", "Why"),
    "todo": ("建议行动", "What to do"),
    "value": ("价值", "Value"),
    "last_contact": ("最近联系", "Last contact"),
    "contacted": ("本月已联系", "Contacted"),
    "no_contact_12m": ("近12个月无联系", "No contact in 12 months"),
    "expected_loss": ("预期损失", "Expected loss"),
    "value_added": ("预计增加贡献", "Value added"),
    "offer_propensity": ("购买意向", "Propensity"),
    "renewal": ("{amount}元 {date}到期", "CNY {amount} maturing {date}"),
    "sort_by": ("排序", "Sort by"),
    "asc": ("升序", "ascending"),
    "desc": ("降序", "descending"),
    "choose": ("请选择", "Choose…"),
    "aum_by_month": ("月日均资产（元）", "AUM by month (CNY)"),
    "contribution_by_month": ("月贡献（元）", "Contribution by month (CNY)"),
    "history_12m": ("近12个月资产与贡献", "AUM and contribution, last 12 months"),
    "latest": ("最近一月", "latest"),
    "no_history": (
        "快照中没有此客户的月度数据。",
        "The snapshot has no monthly figures for this customer.",
    ),
    "other_propensities": ("未持有产品的购买意向", "Propensity for products not held"),
    "local_time": ("本地时间", "local time"),
}

# the codes of serving.outcomes (the warehouse's interaction kinds and the results it takes)
CHANNELS = {
    "call": ("电话", "Call"),
    "visit": ("面谈", "Visit"),
    "message": ("消息", "Message"),
    "event": ("活动", "Event"),
}
RESULTS = {
    "stays": ("留存", "Stays"),
    "will_move_money": ("将转移资金", "Will move money"),
    "not_interested": ("不感兴趣", "Not interested"),
    "complaint": ("投诉", "Complaint"),
    "unreachable": ("无法联系", "Unreachable"),
}
# the outcomes the warehouse's interactions carry besides those (the synthetic bank's)
OUTCOMES = {
    **RESULTS,
    "reached": ("已联系上", "Reached"),
    "no_answer": ("未接通", "No answer"),
    "interested": ("有兴趣", "Interested"),
    "declined": ("已拒绝", "Declined"),
}
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_label(month, lang: str) -> str:
    """A month as a chart's axis reads it: "10月" / "Oct"."""
    return f"{month.month}月" if lang == "zh" else MONTHS_EN[month.month - 1]


def word(table: dict[str, tuple[str, str]], key, lang: str) -> str:
    """``table[key]`` in ``lang``; an unknown key shows as itself (:func:`serving.texts.text`)."""
    return text(table, key, lang) if key in table else str(key)
