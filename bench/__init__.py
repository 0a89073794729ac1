"""Reproducible load benchmarks for Kabinet (see bench/README.md)."""
