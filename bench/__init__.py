"""Throughput benchmarks: our pages as ratios against a minimal Litestar "fortunes" page (see README.md).

Run with `make bench` or `python -m bench --help`. Nothing here is imported by the app or the tests.
"""
