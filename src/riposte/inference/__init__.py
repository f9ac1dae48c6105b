"""Upstream access: providers, routing, and the record/replay layer around them."""
