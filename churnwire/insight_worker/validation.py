"""The model's answer: the JSON schema it is asked for, parsing, and validation.

Structure is checked strictly (exact keys, types, lengths, at most three drivers and actions);
drivers must be among the alert's drivers and actions must cite a retrieved passage. An answer
that repeats a run of the system prompt is refused as a leak.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

CHANNELS = ("email", "phone", "account_manager", "on_site", "service_reply", "none")
MAX_ITEMS = 3
MAX_SUMMARY = 600
MAX_TEXT = 300
# What the constrained model is allowed: short enough that the longest answer the schema admits
# fits in CHURNWIRE_LLM_MAX_TOKENS, so a grammar-bound answer always closes its JSON.
SCHEMA_ITEMS = 2
SCHEMA_SUMMARY = 200
SCHEMA_TEXT = 100
LEAK_WORDS = 6


class InvalidInsight(ValueError):
    """The model's answer is not an insight we can store; the message says why."""


@dataclass(frozen=True)
class ModelInsight:
    """A validated answer."""

    summary: str
    risk_drivers: list[dict[str, str]]
    actions: list[dict[str, str]]


def answer_schema(drivers: list[str], passage_ids: list[str]) -> dict[str, Any]:
    """The JSON schema of an answer for these drivers and passages (used to constrain output)."""
    feature = {"type": "string", "enum": drivers} if drivers else {"type": "string"}
    passage = {"type": "string", "enum": passage_ids} if passage_ids else {"type": "string"}
    text = {"type": "string", "minLength": 1, "maxLength": SCHEMA_TEXT}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "risk_drivers", "actions"],
        "properties": {
            "summary": {"type": "string", "minLength": 10, "maxLength": SCHEMA_SUMMARY},
            "risk_drivers": {
                "type": "array", "minItems": 1, "maxItems": SCHEMA_ITEMS,
                "items": {"type": "object", "additionalProperties": False,
                          "required": ["feature", "explanation"],
                          "properties": {"feature": feature, "explanation": text}},
            },
            "actions": {
                "type": "array", "minItems": 1, "maxItems": SCHEMA_ITEMS,
                "items": {"type": "object", "additionalProperties": False,
                          "required": ["action", "channel", "passage_id"],
                          "properties": {"action": text,
                                         "channel": {"type": "string", "enum": list(CHANNELS)},
                                         "passage_id": passage}},
            },
        },
    }


def extract_json(text: str) -> Any:
    """The JSON object in a model's reply, tolerating code fences and trailing commas."""
    body = text.strip()
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise InvalidInsight("no JSON object in the answer")
    body = re.sub(r",\s*([}\]])", r"\1", body[start:end + 1])
    try:
        return json.loads(body, strict=False)  # raw newlines inside strings are harmless
    except json.JSONDecodeError as error:
        raise InvalidInsight(f"not valid JSON: {error.msg} at {error.pos}") from None


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInsight(f"{where} must be a non-empty string")
    if len(value) > limit:
        raise InvalidInsight(f"{where} is longer than {limit} characters")
    return value.strip()


def _items(document: dict[str, Any], name: str, keys: set[str]) -> list[dict[str, Any]]:
    items = document.get(name)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidInsight(f"{name} must be a list of 1 to {MAX_ITEMS} objects")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != keys:
            raise InvalidInsight(f"{name}[{index}] must have exactly {sorted(keys)}")
    return items


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(words[i:i + LEAK_WORDS]) for i in range(len(words) - LEAK_WORDS + 1)}


def validate(
    document: Any, drivers: list[str], passage_ids: list[str], system_prompt: str
) -> ModelInsight:
    """The answer as a ModelInsight, or InvalidInsight naming the first problem."""
    if not isinstance(document, dict) or set(document) != {"summary", "risk_drivers", "actions"}:
        raise InvalidInsight("the answer must be an object with exactly summary, risk_drivers, "
                             "actions")
    summary = _text(document["summary"], "summary", MAX_SUMMARY)
    risk_drivers = []
    for index, item in enumerate(_items(document, "risk_drivers", {"feature", "explanation"})):
        if drivers and item["feature"] not in drivers:
            raise InvalidInsight(f"risk_drivers[{index}].feature is not one of the alert's drivers")
        risk_drivers.append({"feature": str(item["feature"]), "explanation": _text(
            item["explanation"], f"risk_drivers[{index}].explanation", MAX_TEXT)})
    actions = []
    for index, item in enumerate(_items(document, "actions", {"action", "channel", "passage_id"})):
        if item["channel"] not in CHANNELS:
            raise InvalidInsight(f"actions[{index}].channel must be one of {', '.join(CHANNELS)}")
        if item["passage_id"] not in passage_ids:
            raise InvalidInsight(f"actions[{index}].passage_id is not a retrieved passage")
        actions.append({"action": _text(item["action"], f"actions[{index}].action", MAX_TEXT),
                        "channel": str(item["channel"]), "passage_id": str(item["passage_id"])})
    written = " ".join([summary, *(d["explanation"] for d in risk_drivers),
                        *(a["action"] for a in actions)])
    if _shingles(written) & _shingles(system_prompt):
        raise InvalidInsight("the answer repeats the instructions")
    return ModelInsight(summary, risk_drivers, actions)


def parse_answer(
    text: str, drivers: list[str], passage_ids: list[str], system_prompt: str
) -> ModelInsight:
    """Parse and validate a model's reply."""
    return validate(extract_json(text), drivers, passage_ids, system_prompt)
