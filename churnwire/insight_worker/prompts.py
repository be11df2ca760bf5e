"""Prompt variants: versioned files under ``prompts/``, each a system and a user section.

A variant's version is its file name without ``.md``. ``{{data}}`` and ``{{passages}}`` are
replaced by JSON; nothing else in the file is a placeholder, so braces in the text are safe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from churnwire.insight_worker.context import InsightContext
from churnwire.insight_worker.knowledge import Passage

PROMPTS_DIR = Path(__file__).parent / "prompts"
# The variant that scored best in `churnwire insights eval` (docs/insights-eval.md).
DEFAULT_PROMPT = "v1-plain"


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt variant."""

    version: str
    system: str
    user: str

    def messages(self, context: InsightContext, passages: list[Passage]) -> list[dict[str, str]]:
        """The chat messages for one alert."""
        data = json.dumps(context.prompt_data(), ensure_ascii=True)
        cited = json.dumps(
            [{"passage_id": p.passage_id, "section": p.section, "text": p.text} for p in passages],
            ensure_ascii=True,
        )
        user = self.user.replace("{{data}}", data).replace("{{passages}}", cited)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def _parse(version: str, text: str) -> PromptTemplate:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip().lower(), [])
        elif current is not None:
            current.append(line)
    if set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {version}: expected '## system' and '## user' sections")
    return PromptTemplate(version, "\n".join(sections["system"]).strip(),
                          "\n".join(sections["user"]).strip())


@cache
def load_prompt(version: str) -> PromptTemplate:
    """The prompt variant ``version`` (a file ``prompts/<version>.md``)."""
    path = PROMPTS_DIR / f"{version}.md"
    if not path.is_file():
        known = ", ".join(prompt_versions())
        raise FileNotFoundError(f"no prompt variant {version!r}; known: {known}")
    return _parse(version, path.read_text(encoding="utf-8"))


def prompt_versions() -> list[str]:
    """Every shipped prompt variant."""
    return sorted(path.stem for path in PROMPTS_DIR.glob("*.md"))
