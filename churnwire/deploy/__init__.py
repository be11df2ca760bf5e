"""Deployment helpers: Grafana dashboards, the metric inventory, and the cost estimate."""
