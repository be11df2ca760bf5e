"""The insight worker's settings: defaults, external services, and refusals naming the variable."""

from __future__ import annotations

import pytest

from churnwire.config import ConfigError, load_settings


def test_defaults_run_everything_locally() -> None:
    insight = load_settings({}).insight
    assert insight.enabled and not insight.llm_external and not insight.mongo_external
    assert insight.llm_model == "openai/smollm2"
    assert insight.llm_api_base == "http://127.0.0.1:18090/v1"
    assert insight.qdrant_url is None and insight.prompt is None


def test_a_hosted_model_has_no_api_base_and_is_external() -> None:
    insight = load_settings({"CHURNWIRE_LLM_MODEL": "openai/gpt-4o-mini"}).insight
    assert insight.llm_external and insight.llm_api_base is None


@pytest.mark.parametrize("variable, value", [
    ("CHURNWIRE_INSIGHTS", "maybe"),
    ("CHURNWIRE_LLM_MODEL", "gpt 4"),
    ("CHURNWIRE_LLM_API_BASE", "127.0.0.1:8000"),
    ("CHURNWIRE_LLM_JSON_MODE", "xml"),
    ("CHURNWIRE_MONGO_URL", "http://db:27017"),
    ("CHURNWIRE_QDRANT_URL", "qdrant:6333"),
    ("CHURNWIRE_INSIGHTS_CONCURRENCY", "0"),
    ("CHURNWIRE_INSIGHTS_DAILY_COST", "-1"),
    ("CHURNWIRE_INSIGHTS_PROMPT", "../etc/passwd"),
    ("CHURNWIRE_LLM_PORT", "80"),
])
def test_bad_values_are_refused_with_the_variable_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: value})
    assert error.value.variable == variable
