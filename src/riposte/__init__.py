"""Riposte: the OpenAI Responses API on top of any Chat Completions backend."""

__version__ = "0.1.0"
