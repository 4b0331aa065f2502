"""The serving benchmark: `make bench` (or `python -m bench`). See docs/benchmark.md."""
