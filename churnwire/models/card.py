"""The model card for people: card.json rendered as Markdown."""

from __future__ import annotations

from typing import Any

_METRIC_ROWS = (
    ("auc", "ROC AUC"),
    ("pr_auc", "PR AUC (average precision)"),
    ("accuracy_at_0_5", "accuracy at 0.5"),
    ("accuracy_at_threshold", "accuracy at the operating threshold"),
    ("precision_at_threshold", "precision at the operating threshold"),
    ("recall_at_threshold", "recall at the operating threshold"),
    ("alerted_share_at_threshold", "share of customers alerted"),
    ("brier", "Brier score (lower is better)"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _metrics_table(card: dict[str, Any]) -> list[str]:
    metrics = card["metrics"]
    names = ["model", *metrics["baselines"]]
    columns = [metrics["model"], *metrics["baselines"].values()]
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label in _METRIC_ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(c.get(key)) for c in columns) + " |")
    return lines


def _calibration_table(card: dict[str, Any]) -> list[str]:
    lines = ["| predicted | customers | mean predicted | observed churn |", "|---|---|---|---|"]
    for row in card["metrics"]["model"]["calibration"]:
        lines.append(
            f"| {row['bin']} | {row['count']} | {_cell(row['mean_predicted'])} | "
            f"{_cell(row['observed_churn_rate'])} |"
        )
    return lines


def render_markdown(card: dict[str, Any]) -> str:
    """The Markdown model card."""
    data = card["data"]
    model = card["metrics"]["model"]
    lines = [
        f"# Churn model {card['version']}",
        "",
        f"Created {card['created_at']}. {card['model']['type']} exported to ONNX; ONNX Runtime "
        f"and XGBoost agree to {card['parity']['max_abs_diff']:.2e} on "
        f"{card['parity']['rows']} held-out rows (gate: {card['parity']['tolerance']:g}).",
        "",
        "## Task",
        f"Churn = no counted order in the {card['horizon_days']} days after the cutoff "
        "(cancelled, refunded and failed orders do not count).",
        f"Evaluated cutoff {data['evaluated_cutoff']}; training cutoffs "
        f"{', '.join(data['training_cutoffs'])}.",
        "",
        "## Data and split",
        f"- Protocol: {data['protocol']}",
        f"- Customers: {data['train_customers']} for training, {data['test_customers']} held out "
        f"(seed {data['seed']}, share {data['holdout']}); no customer is on both sides.",
        f"- Training rows: {data['train_rows']}; test rows: {data['test_rows']}.",
        "- Label windows: "
        + ", ".join(f"{c}: {w}" for c, w in data["label_windows"].items()),
        f"- Hyperparameters chosen on a validation split of the training customers: "
        f"{card['model']['params']}",
        "",
        "## Held-out metrics",
        f"Operating threshold {model['threshold']} (`CHURNWIRE_ALERT_THRESHOLD`); "
        f"churn rate {model['churn_rate']}.",
        "",
        *_metrics_table(card),
        "",
        "Baselines: "
        + "; ".join(f"{b['name']}: {b['description']}" for b in card["baselines"]),
        "",
        "## Calibration (held-out customers)",
        *_calibration_table(card),
        "",
        "![ROC](roc.png) ![calibration](calibration.png)",
        "",
        "## Features",
        f"{len(card['columns'])} input columns, in this order: "
        + ", ".join(f"`{c}`" for c in card["columns"]),
        "",
        "Largest gain: "
        + ", ".join(f"`{f['feature']}` {f['gain']:.3g}" for f in card["feature_importance"]),
        "",
    ]
    return "\n".join(lines)
