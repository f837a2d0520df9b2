"""Benchmarks: pytest-benchmark suites (``make bench``), off in ``make test``.

Figures are read as ratios to a floor measured in the same run (docs/design.md §9), never as
absolute times, so they hold on a noisy machine.
"""
