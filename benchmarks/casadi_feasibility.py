"""Feasibility figures for the CasADi backend (issue 20): call overhead, codegen, threads.

Measures, on this machine and with hand-written CasADi (no diffinterface code involved):

* the cost of calling a CasADi ``Function`` from Python with NumPy inputs (3 and 100
  elements): the ``F(x)`` call that returns a DM, its conversion to NumPy, and the
  ``Function.buffer()`` route that writes into a preallocated NumPy array;
* the conversion of a large sparse DM result to NumPy (dense and scipy.sparse);
* for the gradient and the (sparse, nonzeros-only) Hessian of the chained Rosenbrock
  function, n = 100 and 1000: per-call time through the buffer of the SX and MX Functions
  interpreted by CasADi's virtual machine, the time to generate C and compile it with gcc
  (``-O1``, ``-O3``) into a shared library loaded back with ``casadi.external``, the per-call
  time of the compiled Function, and after how many calls compiling pays off;
* the ``jit=True`` route (CasADi's 'shell' importer driving gcc) for the same Functions;
* whether two Python threads calling one Function get correct results, and whether a
  call releases the GIL (the longest pause of a spinning Python thread during the calls);
* models traced through diffinterface's CasADi namespace with SX and with MX symbols: trace
  time, gradient build time and per-call time, against the same gradient written by hand
  in CasADi.

Each time is the median of several ``timeit`` repeats. This is a measurement script, not a
timed test: ``.venv/bin/python benchmarks/casadi_feasibility.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from typing import Any

import casadi as ca
import numpy as np

import diffinterface as di
from diffinterface.backends._casadi_tracing import trace


def _per_call(fn: Callable[[], Any], repeats: int = 7) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` timeit runs of ~0.1 s each."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, number // 2)
    return statistics.median(t / number for t in timer.repeat(repeats, number))


def _fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def _buffered(fn: Any, x0: np.ndarray) -> Callable[[], None]:
    """A call of fn through its buffer: set the input (as every prepared call must), evaluate.

    The buffer keeps no reference to the arrays whose memory it was given: ``out`` must stay
    alive as long as the buffer may write into it (here: the closure holds it).
    """
    buffer, evaluate = fn.buffer()
    out = np.empty(fn.sparsity_out(0).nnz())
    buffer.set_res(0, memoryview(out))

    def call() -> None:
        buffer.set_arg(0, memoryview(x0))
        evaluate()
        assert out.size >= 0  # keeps out alive

    return call


def rosenbrock(x: Any) -> Any:
    return ca.sum1(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def call_overhead() -> None:
    print("## Call overhead: F(x) = 2x from Python with a NumPy x\n")
    print("| n | F(x) → DM | np.asarray(F(x)) | buffer: set_arg + eval | eval alone | NumPy 2*x |")
    print("|---|---|---|---|---|---|")
    for n in (3, 100):
        x = ca.SX.sym("x", n)
        f = ca.Function("f", [x], [2 * x])
        x0 = np.linspace(0.1, 1.0, n)
        _, evaluate = f.buffer()
        row = [
            _per_call(lambda f=f, x0=x0: f(x0)),
            _per_call(lambda f=f, x0=x0: np.asarray(f(x0))),
            _per_call(_buffered(f, x0)),
            _per_call(evaluate),
            _per_call(lambda x0=x0: 2 * x0),
        ]
        print(f"| {n} | " + " | ".join(_fmt(t) for t in row) + " |")
    print()


def conversions(n: int) -> None:
    print(f"## Converting the sparse Hessian DM of Rosenbrock n = {n} to NumPy\n")
    x = ca.SX.sym("x", n)
    out = ca.Function("hessian", [x], [ca.hessian(rosenbrock(x), x)[0]])(np.ones(n))
    print(f"- nnz {out.nnz()} of {n * n}")
    print(
        f"- np.asarray(DM) (goes through DM.full()): {_fmt(_per_call(lambda: np.asarray(out), 3))}"
    )
    print(f"- DM.sparse() (scipy CSC): {_fmt(_per_call(lambda: out.sparse()))}")
    print(f"- DM.sparse().toarray(): {_fmt(_per_call(lambda: out.sparse().toarray()))}")
    print()


def _compile(fn: Any, flags: str) -> tuple[Any, float, float]:
    """Generate C for fn in the current directory, compile it with gcc, load it back."""
    name = f"{fn.name()}_{fn.class_name()}_{flags.strip('-')}"
    start = time.perf_counter()
    fn.generate(name + ".c")
    generated = time.perf_counter()
    cmd = ["gcc", flags, "-fPIC", "-shared", name + ".c", "-o", f"./{name}.so", "-lm"]
    subprocess.run(cmd, check=True)
    compiled = time.perf_counter()
    return ca.external(fn.name(), f"./{name}.so"), generated - start, compiled - generated


def codegen(n: int) -> None:
    print(f"## Rosenbrock n = {n}: interpreted vs compiled (buffer calls)\n")
    print("| operator | symbols | instructions | call | C generation | gcc | pays off after |")
    print("|---|---|---|---|---|---|---|")
    x0 = np.linspace(-1.0, 1.0, n)
    for kind in (ca.SX, ca.MX):
        x = kind.sym("x", n)
        r = rosenbrock(x)
        operators = {
            "gradient": ca.Function("gradient", [x], [ca.gradient(r, x)]),
            "hessian": ca.Function("hessian", [x], [ca.hessian(r, x)[0]]),
        }
        for op, fn in operators.items():
            interpreted = _per_call(_buffered(fn, x0))
            head = [op, kind.__name__, str(fn.n_instructions())]
            print("| " + " | ".join([*head, _fmt(interpreted), "", "", ""]) + " |")
            for flags in ("-O1", "-O3"):
                ext, gen, cc = _compile(fn, flags)
                assert np.allclose(ext(x0).nonzeros(), fn(x0).nonzeros())
                compiled = _per_call(_buffered(ext, x0))
                gain = interpreted - compiled
                pays = f"{(gen + cc) / gain:.3g} calls" if gain > 0 else "never"
                label = f"{kind.__name__}, gcc {flags}"
                cells = [op, label, "", _fmt(compiled), _fmt(gen), f"{cc:.2f} s", pays]
                print("| " + " | ".join(cells) + " |")
    print()


def jit_route(n: int) -> None:
    print(f"## jit=True (compiler 'shell', gcc -O1), Rosenbrock n = {n}\n")
    x = ca.SX.sym("x", n)
    r = rosenbrock(x)
    options = {"jit": True, "compiler": "shell", "jit_options": {"flags": ["-O1"]}}
    x0 = np.linspace(-1.0, 1.0, n)
    for op, expr in (("gradient", ca.gradient(r, x)), ("hessian", ca.hessian(r, x)[0])):
        start = time.perf_counter()
        fn = ca.Function(op, [x], [expr], options)
        built = time.perf_counter() - start
        call = _fmt(_per_call(_buffered(fn, x0)))
        print(f"- {op}: Function built (C generated and compiled) in {built:.2f} s; call {call}")
    print()


def _longest_pause(call: Callable[[], Any]) -> float:
    """The longest a spinning Python thread waits for the GIL while ``call`` runs 5 times."""
    gaps: list[float] = []
    done = threading.Event()

    def spin() -> None:
        last = time.perf_counter()
        while not done.is_set():
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.02)
    for _ in range(5):
        call()
    done.set()
    spinner.join()
    return max(gaps)


def threads(n: int = 1_000_000, calls: int = 5) -> None:
    print(f"## Threads and the GIL (Rosenbrock gradient, n = {n})\n")
    x = ca.SX.sym("x", n)
    fn = ca.Function("gradient", [x], [ca.gradient(rosenbrock(x), x)])
    points = [np.linspace(-1.0, 1.0, n) * (1 + k / 10) for k in range(2)]
    expected = [np.asarray(fn(p)).ravel() for p in points]
    outs = [np.empty(n) for _ in points]
    wrong: list[int] = []

    def work(k: int) -> None:
        buffer, evaluate = fn.buffer()  # one buffer per thread, the Function shared
        buffer.set_arg(0, memoryview(points[k]))
        buffer.set_res(0, memoryview(outs[k]))
        for _ in range(calls):
            evaluate()
            if not np.array_equal(outs[k], expected[k]):
                wrong.append(k)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(f"- two threads, {calls} calls each on one Function: {len(wrong)} wrong results")
    buffer, evaluate = fn.buffer()
    buffer.set_arg(0, memoryview(points[0]))
    buffer.set_res(0, memoryview(outs[0]))
    one = _per_call(evaluate, 3)
    print(f"- one evaluation: {_fmt(one)}; longest pause of another Python thread while")
    print(f"  - buffer evaluations run: {_fmt(_longest_pause(evaluate))}")
    print(f"  - F(x) calls run: {_fmt(_longest_pause(lambda: fn(points[0])))}")
    print()


def _traced_rosenbrock(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _traced_elementwise(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.exp(x) * xp.sin(x))


def _traced_dense_layer(x: Any, a: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.tanh(a @ x))


def _by_hand(name: str, x: Any, a: np.ndarray) -> Any:
    """The model written directly in CasADi (the dense layer's A as a DM constant)."""
    if name == "rosenbrock":
        return rosenbrock(x)
    if name == "elementwise":
        return ca.sum1(ca.exp(x) * ca.sin(x))
    return ca.sum1(ca.tanh(ca.mtimes(ca.DM(a), x)))


def traced_models() -> None:
    print("## Traced through the namespace: SX vs MX, gradient, against hand-written CasADi\n")
    print("| model | n | symbols | trace | gradient Function built | call | hand-written call |")
    print("|---|---|---|---|---|---|---|")
    models = {"rosenbrock": _traced_rosenbrock, "elementwise": _traced_elementwise}
    for name, n in [("rosenbrock", 100), ("rosenbrock", 10000), ("elementwise", 10000),
                    ("dense_layer", 100), ("dense_layer", 300)]:  # fmt: skip
        x0 = np.linspace(-1.0, 1.0, n)
        a = np.random.default_rng(0).normal(size=(n, n)) / n
        for symbols in ("SX", "MX"):
            start = time.perf_counter()
            if name == "dense_layer":
                traced = trace(_traced_dense_layer, (n,), np.float64, (a,), symbols=symbols)
            else:
                traced = trace(models[name], (n,), symbols=symbols)
            traced_s = time.perf_counter() - start
            x, params = traced.x, [p for _, p in traced.parameters]
            start = time.perf_counter()
            grad = ca.Function("gradient", [x, *params], [ca.gradient(traced.y, x)])
            built_s = time.perf_counter() - start
            buffer, evaluate = grad.buffer()
            out, a_flat = np.empty(n), a.reshape(-1)  # alive while the buffer points at them
            buffer.set_res(0, memoryview(out))
            if params:
                buffer.set_arg(1, memoryview(a_flat))
            call = _per_call(
                lambda b=buffer, e=evaluate, x0=x0: (b.set_arg(0, memoryview(x0)), e())
            )
            xs = getattr(ca, symbols).sym("x", n)
            hand = ca.Function("gradient", [xs], [ca.gradient(_by_hand(name, xs, a), xs)])
            np.testing.assert_allclose(out, np.asarray(hand(x0)).ravel(), rtol=1e-12)
            cells = [name, str(n), symbols, _fmt(traced_s), _fmt(built_s), _fmt(call)]
            print("| " + " | ".join([*cells, _fmt(_per_call(_buffered(hand, x0)))]) + " |")
    print()


def main() -> None:
    print(f"casadi {ca.__version__}, numpy {np.__version__}\n")
    traced_models()
    call_overhead()
    conversions(1000)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as directory:
        os.chdir(directory)
        try:
            for n in (100, 1000):
                codegen(n)
            jit_route(100)
        finally:
            os.chdir(cwd)
    threads()


if __name__ == "__main__":
    main()
