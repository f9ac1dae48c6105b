"""Test support that ships with Riposte: a stream-grammar validator, an in-process server, and a
pytest plugin that gives each test its own replay scope."""
