"""Churn models: training, the versioned registry, and the champion used for scoring."""
