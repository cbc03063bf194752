"""Benchmarks: a realistic cluster generator and the analyzer benchmark driver."""
