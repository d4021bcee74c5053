"""A prepared CasADi kernel: one CasADi Function of the operator, called through buffers.

:func:`build_kernel` traces f once, builds the operator's expressions
(``diffinterface.backends._casadi_operators``) and one ``casadi.Function`` of them (compiled
to C with gcc when asked), and returns a :class:`CasadiKernel`. A call copies nothing it
need not: x, the tangents and the float parameters go to the Function as float64
row-major vectors (views when they already are), each output is written by the Function
straight into a new NumPy array (``Function.buffer()``: no CasADi matrix is made per call),
then cast to x's dtype. Each thread has its own buffer (a buffer holds the argument
pointers); evaluation releases the GIL. Building CasADi expressions is not thread-safe:
:data:`BUILDING` serialises it.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable
from operator import call
from typing import Any

import casadi as ca
import numpy as np

from diffinterface._errors import PreparationMismatchError, UnsupportedError
from diffinterface.backends._casadi_operators import TANGENTS, Output, operator_outputs
from diffinterface.backends._casadi_tracing import Traced, trace

__all__ = ["BUILDING", "CasadiKernel", "build_kernel"]

#: held while CasADi expressions and Functions are built (CasADi's reference counts are not
#: atomic); reentrant, since building a derivative may trace a function that builds one
BUILDING = threading.RLock()

#: gcc -O1: -O3 doubles the compile time for no steady gain
_GCC = ("gcc", "-O1", "-fPIC", "-shared")

_STATIC_CHANGED = (
    "A di.Constant of this preparation that is not a float array (array Constant #{index}) "
    "was baked into CasADi's expression graph at preparation (CasADi makes parameters of "
    "float arrays only), and this call passes another value. Prepare again for the new "
    "value, or pass it as a float array."
)


class CasadiKernel:
    """A kernel ``(x, [t,] *consts) -> outputs`` evaluating one CasADi Function.

    Attributes:
        function: the ``casadi.Function`` (inputs: x, the tangents if any, the float
            parameters; outputs: the operator's, laid out for row-major buffers).
        outputs: what each output is (shape, layout, value).
    """

    def __init__(
        self,
        function: Any,
        outputs: list[Output],
        dtypes: tuple[np.dtype, np.dtype],
        takes_tangent: bool,
        parameters: tuple[int, ...],
        static: tuple[tuple[int, Any], ...],
        single: bool = False,
    ) -> None:
        self.function, self.outputs = function, outputs
        self._sizes = [function.nnz_out(i) for i in range(len(outputs))]
        value_dtype, dtype = dtypes
        self._dtypes = [value_dtype if o.value else dtype for o in outputs]
        self._finish = [
            _finisher(o, d, function, i)
            for i, (o, d) in enumerate(zip(outputs, self._dtypes, strict=True))
        ]
        self._takes_tangent, self._parameters, self._static = takes_tangent, parameters, static
        self._local = threading.local()
        #: built for the operator's own result alone: returned as it is, not in a tuple
        self.single = single

    def __call__(self, x: Any, *rest: Any) -> tuple[Any, ...]:
        consts = rest[1:] if self._takes_tangent else rest
        for i, value in self._static:
            if consts[i] is not value and not np.array_equal(consts[i], value):
                raise PreparationMismatchError(_STATIC_CHANGED.format(index=i))
        args = (x, rest[0]) if self._takes_tangent else (x,)
        if self._parameters:
            args += tuple(consts[i] for i in self._parameters)
        try:
            buffer = self._local.buffer
        except AttributeError:  # this thread's first call
            shapes = [np.shape(a) for a in args]
            buffer = self._local.buffer = _Buffer(self.function, shapes, self._sizes)
        outputs = buffer(args)
        if self.single:
            return self._finish[0](outputs[0])
        return tuple(map(call, self._finish, outputs))


class _Buffer:
    """One thread's ``Function.buffer()`` and the arrays it reads and writes.

    A small array (at most :data:`_SMALL` entries) is copied into and out of the buffer's
    own arrays, which it points at once and for all: up to a few thousand entries a copy
    costs less than pointing the buffer at a new array (``set_arg`` / ``set_res`` and the
    arrays made for them: ≈ 5 µs at 1000 entries against ≈ 1 µs of copies). A larger input is
    handed over as it is (a float64 view where it already is one), a larger result is
    written straight into a new array. The buffer holds raw pointers: every array it
    points at is kept alive here, or in the call, until ``evaluate()`` returns.
    """

    def __init__(self, function: Any, shapes: list[tuple[int, ...]], sizes: list[int]) -> None:
        self.data, self.evaluate = function.buffer()
        self.small_in = [(i, np.zeros(s)) for i, s in enumerate(shapes) if _small(s)]
        self.large_in = [i for i, s in enumerate(shapes) if not _small(s)]
        self.outputs = [np.zeros(n) if n <= _SMALL else None for n in sizes]
        self.large_out = [(j, n) for j, n in enumerate(sizes) if n > _SMALL]
        for i, own in self.small_in:
            self.data.set_arg(i, own.data)
        for j, out in enumerate(self.outputs):
            if out is not None:
                self.data.set_res(j, out.data)

    def __call__(self, args: tuple[Any, ...]) -> list[np.ndarray]:
        """The Function's outputs (new float64 arrays: dense row-major, or sparse nonzeros)
        for these inputs (arrays of any floating dtype and the prepared shapes)."""
        for i, own in self.small_in:
            own[...] = args[i]  # np.copyto costs ≈ 0.7 µs more (its dispatch)
        if not self.large_in and not self.large_out:  # every array is the buffer's own
            self.evaluate()
            return [out.copy() for out in self.outputs]  # type: ignore[union-attr]
        data = self.data
        given = [np.ascontiguousarray(args[i], dtype=np.float64).reshape(-1) for i in self.large_in]
        for i, a in zip(self.large_in, given, strict=True):
            data.set_arg(i, a.data)
        fresh = {j: np.empty(n) for j, n in self.large_out}
        for j, r in fresh.items():
            data.set_res(j, r.data)
        self.evaluate()
        return [fresh[j] if out is None else out.copy() for j, out in enumerate(self.outputs)]


#: arrays of at most this many entries are copied (see :class:`_Buffer`; measured on a
#: Σexp gradient: copying is faster at 1000 and 4096 entries, pointing at 16384)
_SMALL = 4096


def _small(shape: tuple[int, ...]) -> bool:
    return math.prod(shape) <= _SMALL


def _finisher(
    output: Output, dtype: np.dtype, function: Any, index: int
) -> Callable[[np.ndarray], Any]:
    """The float64 entries or nonzeros of one output as the operator's result: a NumPy
    array of ``dtype`` and the output's shape, or a scipy.sparse CSR array."""
    shape = output.shape
    if output.layout == "dense":
        if dtype == np.float64:
            return lambda data: data.reshape(shape)
        return lambda data: data.reshape(shape).astype(dtype)
    pattern = function.sparsity_out(index)  # CSC of Mᵀ: the CSR arrays of M
    indptr = np.asarray(pattern.colind(), dtype=np.int32)
    indices = np.asarray(pattern.row(), dtype=np.int32)
    rows, cols = pattern.size2(), pattern.size1()
    if output.layout == "scatter":
        where = np.repeat(np.arange(rows), np.diff(indptr)) * cols + indices

        def scatter(data: np.ndarray) -> Any:
            result = np.zeros(rows * cols, dtype)
            result[where] = data
            return result.reshape(shape)

        return scatter
    import scipy.sparse as sp

    template = sp.csr_array((np.zeros(len(indices), dtype), indices, indptr), (rows, cols))

    def sparse(data: np.ndarray) -> Any:
        matrix = template.copy()  # 15 µs where the constructor's checks take 50-100
        matrix.data = data if dtype == np.float64 else data.astype(dtype)
        return matrix

    return sparse


#: the last trace of each function (per f, one: a preparation builds its kernels in a row)
_TRACES: weakref.WeakKeyDictionary[Any, tuple[Any, Traced]] = weakref.WeakKeyDictionary()


def traced_once(fn: Callable[..., Any], x: Any, consts: tuple[Any, ...], symbols: str) -> Traced:
    """``trace(fn, ...)``, reusing fn's last trace for the same shapes, dtypes and symbols
    (when every Constant is a float array: other values are baked into the graph)."""
    if not all(type(c) is np.ndarray and c.dtype.kind == "f" for c in consts):
        return trace(fn, tuple(x.shape), x.dtype, consts, symbols=symbols)
    key = (tuple(x.shape), x.dtype, symbols, tuple((c.shape, c.dtype) for c in consts))
    last = _TRACES.get(fn)
    if last is not None and last[0] == key:
        return last[1]
    traced = trace(fn, tuple(x.shape), x.dtype, consts, symbols=symbols)
    _TRACES[fn] = (key, traced)
    return traced


def _compiled(function: Any) -> Any:
    """``function`` as generated C compiled by gcc and loaded back (``casadi.external``), in
    a temporary directory removed once the library is loaded.

    Raises:
        UnsupportedError: no gcc on PATH, or gcc failed (its last messages included).
    """
    if shutil.which(_GCC[0]) is None:
        raise UnsupportedError(
            "AutoCasADi(codegen=True) compiles the generated C with gcc, which is not on "
            "PATH. Install gcc, or use AutoCasADi() (CasADi's own evaluation)."
        )
    name = function.name()
    with tempfile.TemporaryDirectory(prefix="diffinterface_casadi_") as directory:
        generator = ca.CodeGenerator(f"{name}.c")
        generator.add(function)
        source = generator.generate(directory + os.sep)
        library = os.path.join(directory, f"{name}.so")
        done = subprocess.run([*_GCC, source, "-o", library, "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            raise UnsupportedError(
                f"gcc could not compile CasADi's generated C for {name} (use AutoCasADi() "
                f"without codegen): {done.stderr[-500:]}"
            )
        return ca.external(name, library)


def build_kernel(
    operator: str,
    fn: Callable[..., Any],
    x: Any,
    consts: tuple[Any, ...],
    batch: int | None,
    config: Any,
    sparse: bool = False,
    last_only: bool = False,
) -> CasadiKernel:
    """Trace ``fn(x, *consts)`` (or reuse its last trace) and build ``operator``'s kernel
    for arrays like these.

    Args:
        operator: one of the eight operators.
        fn: f as a function of one array and the Constant values.
        x: an array with x's shape and dtype.
        consts: the Constant values (float arrays become parameters of the Function,
            others are baked into it and checked at each call).
        batch: the number of tangents of a batch, None for one tangent.
        config: the AutoCasADi configuration (``symbols``, ``codegen``).
        sparse: jacobian and hessian as scipy.sparse CSR arrays of CasADi's exact pattern.
        last_only: the kernel returns the operator's own result alone (the Function
            computes nothing else).

    Raises:
        UnsupportedError: f cannot be traced (the message names the operation).
    """
    with BUILDING:
        traced = traced_once(fn, x, consts, config.symbols)
        kind = type(traced.x)
        inputs = [traced.x]
        tangent = None
        if operator in TANGENTS:
            size = traced.x.numel() if TANGENTS[operator] == "x" else traced.y.numel()
            tangent = kind.sym("t", size, 1 if batch is None else batch)
            inputs.append(tangent)
        shapes = (traced.x_shape, traced.y_shape)
        outputs = operator_outputs(operator, traced.x, traced.y, shapes, tangent, batch, sparse)
        if last_only:
            outputs = outputs[-1:]
        inputs += [symbol for _, symbol in traced.parameters]
        function = ca.Function(operator, inputs, [o.expr for o in outputs])
        if config.codegen:
            function = _compiled(function)
    dtype = np.result_type(traced.dtype, traced.y_dtype)
    return CasadiKernel(
        function,
        outputs,
        (traced.y_dtype, dtype),
        tangent is not None,
        tuple(i for i, _ in traced.parameters),
        traced.static,
        last_only,
    )
