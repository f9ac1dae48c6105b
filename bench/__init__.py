"""Riposte's benchmark suite: a fast fake upstream, a load generator, and the scenario matrix.

Run it from the repository root with `python -m bench`; it writes `bench/RESULTS.md`.
"""
