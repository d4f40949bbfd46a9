"""Every word of the monitoring report, in zh and en (looked up with ``serving.texts.text``)."""

from __future__ import annotations

MONITOR = {
    "title": ("模型监控报告", "Model monitoring report"),
    "current": ("本期", "Current"),
    "reference": ("基准", "Reference"),
    "alert": ("总体状态", "Overall state"),
    "ok": ("正常", "OK"),
    "watch": ("关注", "Watch"),
    "act": ("需处理", "Act"),
    "too small": ("样本过小", "Too small"),
    "alerts": ("告警", "Alerts"),
    "no_alerts": ("无告警", "No alerts"),
    "what": ("对象", "What"),
    "segment": ("分组", "Segment"),
    "band": ("级别", "Band"),
    "value": ("数值", "Value"),
    "floor": ("抽样下限(95%)", "Sampling floor (95%)"),
    "drift": ("分布漂移(PSI)", "Drift (PSI)"),
    "drift_note": (
        "PSI 以基准分位数分箱；{watch} 起关注，{act} 起需处理。无任何变化时 PSI 约为 "
        "(1/n+1/m)·χ²(B−1)：小于 {min_group} 人的分组只报告“样本过小”，不告警。",
        "PSI over quantile bins of the reference; watch from {watch}, act from {act}. With no "
        "shift at all PSI is about (1/n+1/m)·χ²(B−1): groups under {min_group} customers are "
        "reported as too small, never alarmed.",
    ),
    "psi_chart": ("PSI 最高的特征与模型分数", "Highest PSI: features and model scores"),
    "segments": ("分组漂移(等级、分行)", "Drift by segment (tier, branch)"),
    "too_small_note": (
        "{count} 个分组×指标样本过小（未告警）",
        "{count} segment × column results too small (not alarmed)",
    ),
    "scores": ("模型分数分布：基准与本期", "Score distributions: reference and current"),
    "estimate": ("无标签时的性能估计(CBPE)", "Performance before labels (CBPE estimate)"),
    "estimate_note": (
        "假设概率已校准（客户结构可变，流失机制不变），由概率本身推出期望的 ROC 与 AUC；"
        "区间为校准成立时实际 AUC 的 95% 范围。",
        "If the probabilities are calibrated (customers may change, the churn mechanism may "
        "not), they imply an expected ROC curve and AUC; the interval is where the realised AUC "
        "falls 95% of the time if calibration holds.",
    ),
    "realised": ("标签成熟后的实际表现", "Realised performance once labels mature"),
    "auc_chart": ("各期估计 AUC 与实际 AUC", "Estimated and realised AUC by cutoff"),
    "control": ("名单客户与对照组的流失率", "Churn of listed customers against control"),
    "control_chart": ("流失率(95% 区间)", "churn rate (95% interval)"),
    "treated": ("名单客户", "listed (treated)"),
    "control_group": ("对照组", "control"),
    "cutoff": ("数据截至", "Cutoff"),
    "rows": ("客户数", "Customers"),
    "estimated_auc": ("估计 AUC", "Estimated AUC"),
    "interval": ("区间", "Interval"),
    "estimated_churn_rate": ("估计流失率", "Estimated churn rate"),
    "estimated_lift_at_10": ("估计前10%提升度", "Estimated lift at 10%"),
    "estimated_value_captured_at_10": ("估计前10%价值覆盖", "Estimated value captured at 10%"),
    "reference_mean_p": ("基准平均概率", "Reference mean probability"),
    "reference_observed_churn_rate": ("基准实际流失率", "Reference observed churn rate"),
    "test": ("模型测试集", "Model's test figures"),
    "auc": ("AUC", "AUC"),
    "realised_auc": ("实际 AUC", "Realised AUC"),
    "ece": ("ECE", "ECE"),
    "lift_at_10": ("前10%提升度", "Lift at 10%"),
    "value_captured_at_10": ("前10%价值覆盖", "Value captured at 10%"),
    "churn_rate": ("实际流失率", "Churn rate"),
    "saved": ("挽留客户数(估计)", "Customers saved (estimate)"),
    "difference": ("流失率差(对照−名单)", "Difference (control − listed)"),
    "not_matured": ("标签未成熟", "labels not matured"),
    "probability": ("概率", "probability"),
    "share": ("占比", "share"),
    "psi": ("PSI", "PSI"),
}
