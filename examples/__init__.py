"""Examples that run in the tests (see docs/writing_a_backend.md)."""
