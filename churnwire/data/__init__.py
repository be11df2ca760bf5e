"""The shop's system of record: its schema and the loaders for real and synthetic data."""
