"""Hypothesis profiles for the reliability tests.

``ci`` (the default) is derandomised: the examples are the same on every run, so a failure
in CI reproduces on any machine. ``explore`` draws new random examples, more of them; run it
locally with ``HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest tests/reliability``.
Neither profile has a deadline: a JAX compilation takes longer than any sensible one.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_COMMON = {
    "deadline": None,
    # explaining a failure re-runs it hundreds of times (minutes, with JAX compiling)
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile(
    "ci", max_examples=15, derandomize=True, database=None, print_blob=True, **_COMMON
)
settings.register_profile("explore", max_examples=200, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
