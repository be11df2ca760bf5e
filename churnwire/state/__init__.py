"""Per-customer state: the feature definition, its Redis layout, and the offline builder."""
