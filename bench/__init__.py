"""Benchmarks: each runs the system and its raw baseline side by side, alternating.

``python -m bench [--quick]`` (``make bench`` / ``make bench-quick``) runs them all, prints a
table and writes ``bench/results/latest.json``. Targets are reported, never asserted.
"""
