"""``churnwire insights eval``: every prompt variant on the same fixed alerts, scored.

The alerts are fixed customer situations (no personal data), the passages come from the real
knowledge base and the answers from the configured model. Scores, each between 0 and 1:

- ``valid_json``: the first answer parses as a JSON object;
- ``valid_insight``: the insight is the model's after at most one repair (not the rules one);
- ``cited``: share of the first answer's actions that cite a retrieved passage;
- ``drivers``: share of the alert's top drivers the insight names;
- ``length_ok``: summary and actions together hold 15 to 150 words.

``score`` is their mean. The table goes to a Markdown file and the figures to JSON beside it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnwire.config import Settings
from churnwire.insight_worker.context import Driver, InsightContext
from churnwire.insight_worker.generation import Generated, InsightGenerator
from churnwire.insight_worker.knowledge import ensure_knowledge_base
from churnwire.insight_worker.limits import LocalBudget
from churnwire.insight_worker.metrics import InsightMetrics
from churnwire.insight_worker.prompts import load_prompt, prompt_versions
from churnwire.insight_worker.retrieval import Retriever
from churnwire.insight_worker.validation import InvalidInsight, extract_json

log = logging.getLogger(__name__)

_AT = datetime(1998, 3, 1, tzinfo=UTC)


def _case(number: int, probability: float, drivers: list[tuple[str, float, float]],
          facts: dict[str, Any], orders: list[dict[str, Any]]) -> InsightContext:
    return InsightContext(
        alert_id=f"eval-{number}:1", customer_id=f"eval-{number}", probability=probability,
        risk_band="high", threshold=0.8, event_time=_AT,
        drivers=[Driver(f, v, c) for f, v, c in drivers], facts=facts, orders=orders,
    )


def _order(date: str, amount: float, items: int, category: str | None = None) -> dict[str, Any]:
    return {"date": date, "amount": amount, "items": items, "category": category,
            "status": "completed"}


def evaluation_alerts() -> list[InsightContext]:
    """The fixed situations every variant is scored on."""
    base = {"segment": "regular", "marketing_opt_in": True, "orders_lifetime": 6,
            "spend_lifetime": 212.4, "avg_order_value": 35.4, "days_since_last_order": 140.0,
            "tenure_days": 420.0, "orders_90d": 0, "spend_90d": 0.0, "orders_trend_90d": -2,
            "spend_trend_30d": 0.0, "sessions_30d": 0}
    return [
        _case(1, 0.91, [("days_since_last_order", 140.0, 0.9), ("orders_90d", 0.0, 0.4),
                        ("orders_trend_90d", -2.0, 0.2)], base,
              [_order("1997-10-12", 31.5, 2, "music"), _order("1997-08-02", 44.0, 3, "music")]),
        _case(2, 0.86, [("spend_trend_30d", -120.0, 0.7), ("avg_order_value", 88.0, 0.3)],
              {**base, "segment": "vip", "spend_lifetime": 1480.0, "avg_order_value": 88.0},
              [_order("1998-01-20", 95.0, 4, "box-sets")]),
        _case(3, 0.83, [("days_since_last_order", 75.0, 0.5), ("tenure_days", 40.0, 0.3)],
              {**base, "segment": "new", "orders_lifetime": 1, "marketing_opt_in": False},
              [_order("1997-12-15", 12.0, 1)]),
        _case(4, 0.95, [("orders_lifetime", 1.0, 0.8), ("days_since_last_order", 300.0, 0.6)],
              {**base, "segment": None, "orders_lifetime": 1, "marketing_opt_in": False},
              [_order("1997-05-03", 14.99, 1, "music")]),
        _case(5, 0.81, [("sessions_30d", 9.0, 0.4), ("orders_90d", 0.0, 0.35)],
              {**base, "sessions_30d": 9}, [_order("1997-11-30", 27.0, 2, "music")]),
        _case(6, 0.88, [("orders_trend_90d", -4.0, 0.6), ("spend_90d", 10.0, 0.3)],
              {**base, "segment": "vip", "orders_lifetime": 25, "spend_lifetime": 2300.0},
              [_order("1998-02-01", 10.0, 1, "music"), _order("1997-12-01", 120.0, 6, "music")]),
    ]


def _words(generated: Generated) -> int:
    insight = generated.insight
    text = " ".join([insight.summary, *(a["action"] for a in insight.actions)])
    return len(text.split())


def _cited(answer: str | None, passage_ids: set[str]) -> float:
    try:
        document = extract_json(answer or "")
    except InvalidInsight:
        return 0.0
    actions = document.get("actions") if isinstance(document, dict) else None
    if not isinstance(actions, list) or not actions:
        return 0.0
    good = sum(1 for a in actions if isinstance(a, dict) and a.get("passage_id") in passage_ids)
    return good / len(actions)


def _drivers_named(context: InsightContext, generated: Generated) -> float:
    expected = [d.feature for d in context.drivers[:3]]
    named = {d["feature"] for d in generated.insight.risk_drivers}
    text = json.dumps([generated.insight.summary, generated.insight.risk_drivers]).lower()
    hits = sum(1 for f in expected if f in named or f.replace("_", " ") in text)
    return hits / len(expected) if expected else 1.0


def _valid_json(answer: str | None) -> float:
    try:
        return 1.0 if isinstance(extract_json(answer or ""), dict) else 0.0
    except InvalidInsight:
        return 0.0


async def _score_variant(settings: Settings, version: str, mode: str,
                         cases: list[tuple[InsightContext, list[Any]]]) -> dict[str, Any]:
    insight = replace(settings.insight, llm_json_mode=mode, breaker_failures=1000,
                      rate_per_minute=10_000)
    generator = InsightGenerator(insight, LocalBudget(10**9, 10**6), InsightMetrics())
    prompt = load_prompt(version)
    rows: dict[str, list[float]] = {k: [] for k in
                                    ("valid_json", "valid_insight", "cited", "drivers",
                                     "length_ok", "seconds", "tokens")}
    for context, passages in cases:
        started = time.perf_counter()
        generated = await generator.generate(context, passages, prompt)
        rows["seconds"].append(time.perf_counter() - started)
        rows["tokens"].append(generated.tokens)
        rows["valid_json"].append(_valid_json(generated.first_answer))
        rows["valid_insight"].append(1.0 if generated.generator == "model" else 0.0)
        rows["cited"].append(_cited(generated.first_answer, {p.passage_id for p in passages}))
        rows["drivers"].append(_drivers_named(context, generated))
        rows["length_ok"].append(1.0 if 15 <= _words(generated) <= 150 else 0.0)
        log.info("eval %s/%s %s: %s", version, mode, context.alert_id, generated.generator)
    means = {k: round(statistics.fmean(v), 3) for k, v in rows.items()}
    quality = ("valid_json", "valid_insight", "cited", "drivers", "length_ok")
    means["score"] = round(statistics.fmean(means[k] for k in quality), 3)
    return {"prompt": version, "json_mode": mode, "alerts": len(cases), **means}


def _table(results: list[dict[str, Any]], model: str) -> str:
    lines = [
        "# Prompt variants, measured",
        "",
        f"Written by `churnwire insights eval` with model `{model}` on "
        f"{results[0]['alerts'] if results else 0} fixed alerts per variant "
        f"({datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC). Scores are shares between 0 "
        "and 1; `score` is the mean of the five quality columns. See "
        "[insights.md](insights.md) for what each column means.",
        "",
        "| prompt | json mode | valid JSON | model insight | cited | drivers | length ok | "
        "score | s/alert | tokens/alert |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: -r["score"]):
        lines.append(
            f"| {r['prompt']} | {r['json_mode']} | {r['valid_json']:.2f} | "
            f"{r['valid_insight']:.2f} | {r['cited']:.2f} | {r['drivers']:.2f} | "
            f"{r['length_ok']:.2f} | **{r['score']:.2f}** | {r['seconds']:.1f} | "
            f"{r['tokens']:.0f} |"
        )
    return "\n".join(lines) + "\n"


async def evaluate(settings: Settings, versions: list[str], modes: list[str],
                   alerts: int) -> list[dict[str, Any]]:
    """Score each (prompt, JSON mode) pair on the first ``alerts`` fixed alerts."""
    retriever = Retriever(settings)
    try:
        cases = [(c, retriever.search_sync(c.retrieval_query()))
                 for c in evaluation_alerts()[:alerts]]
    finally:
        retriever.close()
    return [await _score_variant(settings, v, m, cases) for v in versions for m in modes]


def run_evaluation(settings: Settings, out: str, variants: list[str] | None,
                   alerts: int) -> int:
    """Run the evaluation with the configured model, starting the embedded one if needed."""
    from churnwire.embedded.llm import EmbeddedLlm
    from churnwire.embedded.stack import Stack

    versions = variants or prompt_versions()
    for version in versions:
        load_prompt(version)
    ensure_knowledge_base(settings)
    llm = EmbeddedLlm(settings)
    started_here = not llm.external and llm.status().pid is None
    if started_here:
        llm.start()
        Stack(settings).wait_healthy(llm, 120)
    try:
        results = asyncio.run(evaluate(settings, versions, ["schema", "off"], alerts))
    finally:
        if started_here:
            llm.stop()
    table = _table(results, settings.insight.llm_model)
    path = Path(out)
    path.write_text(table)
    path.with_suffix(".json").write_text(json.dumps(
        {"model": settings.insight.llm_model, "results": results}, indent=2) + "\n")
    print(table)
    print(f"written to {path} and {path.with_suffix('.json')}")
    return 0
