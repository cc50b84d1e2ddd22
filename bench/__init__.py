"""Benchmarks: ocilearn against the reference tools in the same run (see BENCHMARKS.md)."""
