"""The stream worker: Faust agents that fold change events into per-customer state."""
