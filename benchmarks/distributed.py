"""Scaling out with di.Distributed: measured side by side in one run, printed as ratios.

1. **A black-box simulation**: f(p) solves a 16-state ODE with ``scipy.integrate.solve_ivp``
   (about 20 ms of CPU per call) and returns the final state; its central finite-difference
   Jacobian in p (n = 16: 33 evaluations serially) with ``di.AutoFiniteDiff()`` on the
   caller, versus ``di.Distributed`` over 2 Dask worker processes (a ``LocalCluster``) and
   over a ``ProcessPoolExecutor(2)``: each worker takes 8 columns, 17 evaluations. Goal on
   this 2-core machine: ≥ 1.7× with Dask. The results must be identical to the serial ones.
2. **Overheads per chunk** of each engine, with a cheap f (a Jacobian of 8 columns that
   costs microseconds): the latency of a call with one chunk, minus the serial call; and
   the cost of each further chunk, from a call of 64 one-column chunks.
3. **A model** of the speed-up with W workers from those measured figures, for f of
   20 ms and 2 s and n = 16 and 512: serial (2n + 1)·t_f; distributed
   (2⌈n/W⌉ + 1)·t_f + latency + (chunks − 1)·per-chunk cost, one chunk per worker. The
   per-chunk cost is counted as if paid one after the other on the caller (pessimistic).
4. **JAX devices**: a prepared forward-mode Jacobian of the same ODE written in JAX (64
   states, 1000 fixed RK4 steps in one ``fori_loop``) with
   ``Distributed(AutoJAX(mode="forward"), devices=jax.devices())`` versus ``AutoJAX`` alone,
   in a subprocess with 1 and one with 4 host devices
   (``XLA_FLAGS=--xla_force_host_platform_device_count``): time and largest difference.

Times are medians of interleaved rounds (every method in turn), since the machine is shared
with other work: the load average is printed before and after.
Run: ``.venv/bin/python benchmarks/distributed.py [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

import diffinterface as di

N = 16
Y0 = np.linspace(0.5, 1.5, N)
P = np.linspace(0.5, 1.0, N)


def simulate(p: Any) -> Any:
    """The final state of dy/dt = −p·y + sin(roll(y))/2 + cos t at t = 14 (16 states)."""

    def rhs(t: float, y: Any) -> Any:
        return -p * y + 0.5 * np.sin(np.roll(y, 1)) + np.cos(t)

    return solve_ivp(rhs, (0.0, 14.0), Y0, method="RK45", rtol=1e-10, atol=1e-12).y[:, -1]


def cheap(x: Any) -> Any:
    return np.sin(x) * np.sum(x * x)


def median_time(fn: Callable[[], Any], repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def interleaved(
    methods: dict[str, Callable[[], Any]], rounds: int, repeat: int = 1
) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            times[name].append(median_time(fn, repeat))
    return {name: statistics.median(t) for name, t in times.items()}


def simulation(engines: dict[str, Any], rounds: int) -> None:
    cpu = []
    for _ in range(5):
        start = time.thread_time()  # this thread's CPU time (Dask's client has threads too)
        simulate(P)
        cpu.append(time.thread_time() - start)
    print(f"f: the ODE solve costs {statistics.median(cpu) * 1e3:.1f} ms of CPU per call")
    serial = di.AutoFiniteDiff()
    preps = {"serial": (serial, di.prepare_jacobian(simulate, serial, P))}
    for name, workers in engines.items():
        backend = di.Distributed(serial, workers=workers)
        preps[name] = (backend, di.prepare_jacobian(simulate, backend, P))
    want = di.jacobian(simulate, serial, P, prep=preps["serial"][1])
    for name, (backend, prep) in preps.items():  # warm: the workers import and prepare
        assert np.array_equal(di.jacobian(simulate, backend, P, prep=prep), want), name
    methods = {
        name: (lambda b=backend, p=prep: di.jacobian(simulate, b, P, prep=p))
        for name, (backend, prep) in preps.items()
    }
    times = interleaved(methods, rounds)
    print(f"\nFinite-difference Jacobian, n = {N} (medians of {rounds} rounds):")
    for name, t in times.items():
        ratio = times["serial"] / t
        print(f"  {name:<28} {t * 1e3:8.1f} ms   speed-up {ratio:4.2f}×")
    print("  results identical to the serial Jacobian: yes (checked bit for bit)")


def overheads(engines: dict[str, Any], rounds: int) -> dict[str, tuple[float, float]]:
    """Per engine: (latency of a one-chunk call, cost per further chunk), in seconds."""
    x8, x64 = np.linspace(0.5, 2.0, 8), np.linspace(0.5, 2.0, 64)
    serial = di.AutoFiniteDiff()
    methods: dict[str, Callable[[], Any]] = {}
    for name, x in (("serial 8", x8), ("serial 64", x64)):
        prep = di.prepare_jacobian(cheap, serial, x)
        methods[name] = lambda x=x, p=prep: di.jacobian(cheap, serial, x, prep=p)
    for name, workers in engines.items():
        for chunks, x, size in ((1, x8, 8), (64, x64, 1)):
            backend = di.Distributed(serial, workers=workers, chunk_size=size)
            prep = di.prepare_jacobian(cheap, backend, x)
            di.jacobian(cheap, backend, x, prep=prep)
            methods[f"{name} {chunks}"] = lambda b=backend, x=x, p=prep: di.jacobian(
                cheap, b, x, prep=p
            )
    times = interleaved(methods, rounds, repeat=5)
    print("\nOverheads, with an f of microseconds (medians):")
    found = {}
    for name in engines:
        latency = times[f"{name} 1"] - times["serial 8"]
        per_chunk = (times[f"{name} 64"] - times["serial 64"] - latency) / 63
        found[name] = (latency, per_chunk)
        print(
            f"  {name:<28} one-chunk call {latency * 1e3:6.2f} ms   "
            f"each further chunk {per_chunk * 1e3:6.3f} ms"
        )
    return found


def model(found: dict[str, tuple[float, float]]) -> None:
    print("\nModel of the speed-up with W workers, one chunk each (from the figures above):")
    for name, (latency, per_chunk) in found.items():
        print(f"  {name}:")
        print("    n     t_f     W=8      W=64     W=512")
        for n in (16, 512):
            for t_f in (0.02, 2.0):
                cells = []
                for w in (8, 64, 512):
                    chunks = min(w, n)
                    k = math.ceil(n / chunks)
                    distributed = (2 * k + 1) * t_f + latency + (chunks - 1) * per_chunk
                    cells.append(f"{(2 * n + 1) * t_f / distributed:7.1f}×")
                print(f"    {n:<5} {t_f:>4g} s " + "  ".join(cells))


DEVICES = textwrap.dedent(
    """
    import statistics, time, jax, jax.numpy as jnp, numpy as np
    import diffinterface as di
    n = 64
    y0 = jnp.linspace(0.5, 1.5, n, dtype=jnp.float32)
    def f(p):  # the ODE of part 1 with n states, 1000 fixed RK4 steps in one compiled loop
        def rhs(t, y):
            return -p * y + 0.5 * jnp.sin(jnp.roll(y, 1)) + jnp.cos(t)
        def step(i, y):
            t, h = i * 0.01, 0.01
            k1 = rhs(t, y)
            k2 = rhs(t + h / 2, y + h / 2 * k1)
            k3 = rhs(t + h / 2, y + h / 2 * k2)
            k4 = rhs(t + h, y + h * k3)
            return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return jax.lax.fori_loop(0, 1000, step, y0)
    x = np.linspace(0.5, 1.0, n).astype(np.float32)
    serial = di.AutoJAX(mode="forward")
    sharded = di.Distributed(serial, devices=jax.devices())
    runs = {}
    for name, b in (("serial", serial), ("sharded", sharded)):
        prep = di.prepare_jacobian(f, b, x)
        runs[name] = lambda b=b, p=prep: np.asarray(di.jacobian(f, b, x, prep=p))
    times = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(3):
                run()
            times[name].append((time.perf_counter() - start) / 3)
    difference = float(np.max(np.abs(runs["sharded"]() - runs["serial"]())))
    print(jax.device_count(), statistics.median(times["serial"]),
          statistics.median(times["sharded"]), difference)
    """
)


def devices(rounds: int) -> None:
    print(
        "\nJAX devices: prepared forward-mode Jacobian of the ODE (n = 64, 1000 RK4 steps), "
        f"medians of {rounds} rounds:"
    )
    for count in (1, 4):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}")
        script = f"ROUNDS = {rounds}\n{DEVICES}"
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        found, serial, sharded, difference = done.stdout.split()
        print(
            f"  {found} device(s): AutoJAX {float(serial) * 1e3:6.2f} ms   Distributed "
            f"{float(sharded) * 1e3:6.2f} ms   ratio {float(serial) / float(sharded):4.2f}×   "
            f"largest difference {float(difference):.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    # This file has the name of Dask's package `distributed`: take its folder off the import
    # path (the worker processes inherit it), so that `import distributed` finds Dask's.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    from dask.distributed import Client, LocalCluster

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    engines = {"Dask, 2 worker processes": client, "ProcessPoolExecutor(2)": pool}
    try:
        simulation(engines, rounds)
        found = overheads(engines, rounds)
        model(found)
    finally:
        pool.shutdown()
        client.close()
        cluster.close()
    devices(rounds)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
