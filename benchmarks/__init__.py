"""Benchmarks: smartsync and a naive client against the simulated tenant, next to Graph's floor.

`python -m benchmarks --size secondary` (or `make bench`) runs every scenario and writes
`benchmarks/results.json`; see `benchmarks/README.md` for what is measured and the latest figures.
"""
