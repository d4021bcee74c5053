"""di.Distributed(AutoJAX(...), devices=...): the batch axis sharded over JAX devices in one
compiled call. Several devices are four host CPU devices, in a subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag must be set before JAX
starts); results are compared with the serial JAX backend, and the test suite's checks
(no retracing of prepared calls) run on the same scenarios."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np

import diffinterface as di
from diffinterface import testsuite as ts

ROOT = Path(__file__).resolve().parents[1]

CHECKS = textwrap.dedent(
    """
    import jax, numpy as np
    import diffinterface as di
    from diffinterface import testsuite as ts
    from diffinterface.testsuite._collections import energy, wave
    from diffinterface.testsuite._sparse_scenarios import tridiagonal

    assert jax.device_count() == 4, jax.devices()
    x = np.linspace(0.5, 2.0, 6)  # 6 columns over 4 devices: uneven, padded by XLA
    ts6 = tuple(np.sin(x + k) for k in range(6))
    for mode in ("forward", "reverse"):
        serial = di.AutoJAX(mode=mode)
        sharded = di.Distributed(serial, devices=jax.devices())
        with jax.enable_x64(True):
            jac = di.jacobian(wave, sharded, jax.device_put(x))  # a JAX x: a JAX result
        assert jac.dtype == np.float64 and len(jac.sharding.device_set) == 4, jac.sharding
        np.testing.assert_allclose(jac, di.jacobian(wave, serial, x), rtol=1e-14)
        h = di.hessian(energy, sharded, x)
        np.testing.assert_allclose(h, di.hessian(energy, serial, x), rtol=1e-13)
        for op, f in (("pushforward", wave), ("pullback", wave), ("hvp", energy)):
            got = getattr(di, op)(f, sharded, x, ts6)
            want = getattr(di, op)(f, serial, x, ts6)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)
        sparse = di.jacobian(tridiagonal, di.AutoSparse(sharded), x).toarray()
        want = di.jacobian(tridiagonal, di.AutoSparse(serial), x).toarray()
        np.testing.assert_allclose(sparse, want, rtol=1e-14)
    spread = [  # the suite's checks: prepared calls do not retrace, value variants, ...
        s for s in ts.default_scenarios(dtypes=(np.float64,))
        if s.name in ("jacobian wave 3 float64", "hessian energy 3 float64")
    ]
    assert len(spread) == 2
    report = ts.test_differentiation([sharded], spread)
    assert report.ok, [str(r) for r in report.results if r.status == "fail"]
    print("ok")
    """
)


def test_batches_sharded_over_four_host_devices() -> None:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    done = subprocess.run(
        [sys.executable, "-c", CHECKS], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_one_device_is_the_serial_computation() -> None:
    sharded = di.Distributed(di.AutoJAX(mode="forward"), devices=jax.devices()[:1])
    spread = [
        s
        for s in ts.default_scenarios(dtypes=(np.float64,))
        if "batch" in s.name and s.operator == "pushforward"
    ]
    report = ts.test_differentiation([sharded], spread)
    assert report.ok, [str(r) for r in report.results if r.status == "fail"]
    assert repr(sharded) == "Distributed(AutoJAX(mode='forward'), devices=1×cpu)"
    assert di.Distributed(di.AutoJAX(), devices=jax.devices()) == di.Distributed(
        "jax", devices=tuple(jax.devices())
    )
