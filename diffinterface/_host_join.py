"""Step 3 of preparation, for a structure of NumPy arrays under a compiling backend: the
leaves joined and the results cut on the host.

A compiled call on a dict of NumPy arrays moves each leaf to the device and each result
leaf back (JAX: ≈ 8 µs a transfer, more than small kernels cost). For a gradient, whose
arguments and results are x's leaves and f's value, joining the leaves into one NumPy
vector before the call, and cutting the one result vector into views after it, moves one
array each way whatever the number of leaves. The kernel is then the backend's array
kernel, compiled on that vector; a joined vector of the right size could hide leaves of
other shapes, so these kernels do not run before the guard (``Kernels.run_first``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diffinterface._adapter import Kernel
from diffinterface._arguments import Arguments, NativeProblem
from diffinterface._kernels import Kernels, Variant, array_kernel, last_output
from diffinterface._tangents import Tangents

__all__ = ["host_joined_kernels", "joins_on_host"]


def joins_on_host(args: Arguments, problem: NativeProblem, tangents: Tangents | None) -> bool:
    """Whether to build the kernels with :func:`host_joined_kernels`: a gradient of a
    structure of three NumPy arrays or more (no ``y=``, no aux) under a backend that
    compiles (two leaves, moved one by one, took as long as joined in A/B runs on JAX)."""
    adapter = problem.adapter
    return (
        args.spec.name == "gradient"
        and adapter.compiles
        and args.x_kind == "numpy"
        and adapter.native_kind != "numpy"
        and len(args.leaves) > 2
        and tangents is None
        and args.y is None
        and problem.aux is None
    )


def host_joined_kernels(args: Arguments, problem: NativeProblem, variant: Variant) -> Kernels:
    """The kernels of a gradient taking x's NumPy leaves and giving NumPy results (f's
    value, then the gradient as x's leaves, views of one array)."""
    spec, adapter, structure = args.spec, problem.adapter, args.structure
    declared = adapter.declared(spec.name, False)
    vector = structure.join([np.asarray(a) for a in args.leaves], np)
    example = (vector, *problem.consts)
    leaves_of, cut = structure.leaves, structure.cut

    def compiled(last_only: bool) -> Kernel:
        gives_last = last_only and declared is not None and declared.last_only
        raw = array_kernel(args, problem, None, gives_last)
        if last_only and not gives_last:  # the value dropped in the compiled code
            raw = last_output(raw)
        kernel = adapter.compile(raw, example)

        def on_host(x: Any, *consts: Any) -> Any:
            v = np.concatenate(leaves_of(x), axis=None)  # type: ignore[arg-type]
            if last_only:
                return cut(np.array(kernel(v, *consts)))
            y, g = kernel(v, *consts)
            return np.array(y), cut(np.array(g))

        return on_host

    return Kernels(
        all=compiled(False) if variant != "last" else None,
        last=compiled(True) if variant != "all" else None,
        writes_out=None,
        run_first=False,
        passed=frozenset(),
        blocks=None,
        results_kind="numpy",
    )
