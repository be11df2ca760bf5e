"""The deterministic insight written when the model cannot be used: never an alert without one.

It states the drivers with their values and turns the retrieved passages into actions, with a
channel chosen from the customer's consent and segment as the contact playbook prescribes.
"""

from __future__ import annotations

from churnwire.insight_worker.context import InsightContext
from churnwire.insight_worker.knowledge import Passage
from churnwire.insight_worker.validation import MAX_ITEMS, MAX_TEXT, ModelInsight


def _value(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2f}"


def _channel(context: InsightContext) -> str:
    if not context.facts.get("marketing_opt_in"):
        return "service_reply"
    if context.facts.get("segment") == "vip":
        return "account_manager"
    return "email"


def _first_sentence(text: str) -> str:
    sentence = text.split(". ")[0].rstrip(".")
    return sentence[:MAX_TEXT - 1] + "."


def rules_insight(context: InsightContext, passages: list[Passage]) -> ModelInsight:
    """A grounded insight built from the context and passages alone."""
    drivers = context.drivers[:MAX_ITEMS]
    risk_drivers = [
        {"feature": d.feature,
         "explanation": f"{d.description}: {_value(d.value)} (pushes the score up by "
                        f"{d.contribution:.2f})"[:MAX_TEXT]}
        for d in drivers
    ] or [{"feature": "churn_probability",
           "explanation": "the model gave no contributing features for this score"}]
    named = ", ".join(d.description for d in drivers) or "its recent behaviour"
    summary = (f"Churn probability {context.probability:.2f} crossed the "
               f"{context.threshold:.2f} threshold; main drivers: {named}.")[:600]
    channel = _channel(context)
    actions = [
        {"action": f"{p.section}: {_first_sentence(p.text)}"[:MAX_TEXT], "channel": channel,
         "passage_id": p.passage_id}
        for p in passages[:MAX_ITEMS]
    ] or [{"action": "Review the account by hand: no playbook passage was found.",
           "channel": "none", "passage_id": ""}]
    return ModelInsight(summary, risk_drivers, actions)
