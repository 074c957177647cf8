"""Benchmarks: the scenario suite, log templates on Loghub, and scale (`python -m bench`)."""
