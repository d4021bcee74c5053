"""The cross-backend test and benchmark suite (scenarios, test_differentiation,
benchmark_differentiation). Filled in by the test-suite issue; importable now."""

__all__: list[str] = []
