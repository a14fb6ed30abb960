"""Benchmarks: one command each, printing a table (see bench/README.md)."""
