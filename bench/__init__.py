"""Issue 6's benchmark suite: ``python -m bench.run`` (see BENCHMARKS.md)."""
