"""Benchmarks: each module bench/bench_*.py has run() -> list of rows and prints a table."""
