"""Helpers shared by tests (and benchmarks): import them from here, never from a test module."""
