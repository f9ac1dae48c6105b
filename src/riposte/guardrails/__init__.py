"""Guardrails: moderation of a turn's input before the model and of its answer as it streams."""
