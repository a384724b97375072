"""Data preparation: the original helpers, dataset adapters and the integrity check."""
