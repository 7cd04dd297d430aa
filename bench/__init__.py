"""Throughput benchmarks, each a ratio measured in the same run: our pages against a minimal Litestar
"fortunes" page, our movement writes through the API against pgbench on the same PostgreSQL (README.md).

Run with `make bench` or `python -m bench --help`. Nothing here is imported by the app or the tests.
"""
