"""The insight worker: grounded retention insights for every churn alert.

One module per concern: ``consumer`` (alerts in), ``context`` (what is known about the
customer), ``retrieval`` and ``knowledge`` (playbook passages), ``prompts``, ``generation``
(the model through litellm), ``validation``, ``rules`` (the deterministic fallback), ``limits``
(rate, budget, breaker), ``store`` and ``publish`` (insights out), ``service`` (one alert's way
through all of them).
"""
