"""Benchmarks: each prints a table of ratios against a baseline run side by side."""
