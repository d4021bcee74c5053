"""The prepared call: one :class:`Prep` object, one acceptance guard, one general path.

Every call of an operator goes through :func:`run`: an unprepared call prepares first
(:func:`prepare`, whose steps are ``diffinterface._prepare``'s), then it runs:

* the **guard** (made at preparation, ``diffinterface._compose``) compares what is cheap
  to compare: the operator, f and the backend by identity, and the signatures of x's
  leaves, the tangents and the contexts; a call it accepts runs the **composed kernel**
  (conversions, the backend's kernel and the finishing of its results, put together at
  preparation in the same module);
* where the kernels are compiled and pure (JAX), the order is chosen once, at preparation:
  the compiled call starts first, since it checks shapes and dtypes itself, and the rest
  of the guard runs while it computes;
* anything else takes the **general path**: it normalises the arguments (a Python number
  as x or tangent, ``y=``, ``out=``, ``flat=``) and runs the same kernel, or explains the
  mismatch (``diffinterface._mismatch``).

f and the kernels run at most once per call: an exception they raise propagates once,
with its own type, and a note naming the operator and backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from diffinterface._arrays import describe
from diffinterface._backend_types import BackendLike
from diffinterface._compose import Run
from diffinterface._derived import OperatorSpec
from diffinterface._errors import (
    InvalidArgumentError,
    PreparationMismatchError,
    UnsupportedError,
    raise_original,
)
from diffinterface._prepare import Parts, Variant, prepare_parts
from diffinterface._results import write_results

__all__ = ["Prep", "prepare", "run"]


def prepare(*args: Any, **kwargs: Any) -> Prep:
    """The :class:`Prep` of :func:`~diffinterface._prepare.prepare_parts` (its arguments):
    validate, convert, build, compose and compile, the work behind ``prepare_<operator>``."""
    return Prep(prepare_parts(*args, **kwargs))


def run(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    t: Any,
    contexts: tuple[Any, ...],
    prep: Prep | None,
    last_only: bool,
    out: Any = None,
    y: Any = None,
    flat: bool = False,
    error: Any = False,
    has_aux: bool = False,
) -> Any:
    """The operator's results for this call, from ``prep`` (preparing first when it is
    None): all outputs as a tuple, or the last one alone with ``last_only`` (written into
    ``out`` when given); with ``error`` (True, or an array to write it into), an estimate of
    the last output's error after them; with ``has_aux``, all that paired with f's aux.
    The guard and the composed kernel are called from here, not from a method of Prep:
    one Python call fewer per prepared call (≈ 0.4 µs).

    Raises:
        InvalidArgumentError: ``prep`` is not a preparation.
        PreparationMismatchError: ``prep`` was made for other arguments.
        UnsupportedError: ``error`` with a backend that gives no error estimate.
    """
    if type(prep) is not Prep:
        if prep is not None:
            raise InvalidArgumentError(
                f"prep= must come from di.prepare_{spec.name}(...); got {type(prep).__name__}."
            )
        variant: Variant = "last" if last_only and y is None else "all"
        prep = prepare(spec, f, backend, x, t, contexts, y, variant, has_aux)
    composed = prep._run_last if last_only else prep._run_all
    no_extras = y is None and out is None and not flat and has_aux is prep._has_aux
    if no_extras and error is False and composed is not None:
        first = prep._run_first
        if first is None:
            if prep._guard(spec, f, backend, x, t, contexts):
                try:
                    return composed(x, t, contexts)
                except Exception as e:
                    raise_original(e, prep._note)
                    raise
        elif first[0](x, t):  # the compiled call checks shapes and dtypes
            try:
                result = composed(x, t, contexts)
            except Exception as e:
                report = prep._explain(spec, f, backend, x, t, contexts, None, has_aux)
                if report is not None:
                    raise PreparationMismatchError(report) from None
                raise_original(e, prep._note)
                raise
            if first[1](spec, f, backend, contexts):
                return result
            report = prep._explain(spec, f, backend, x, t, contexts, None, has_aux)
            if report is not None:
                raise PreparationMismatchError(report)
            return result
    elif no_extras and error is True and prep._run_first is None:  # with its estimate
        with_error = prep._run_error[1 if last_only else 0]
        if with_error is not None and prep._guard(spec, f, backend, x, t, contexts):
            return prep._run(with_error, x, t, contexts)
    return prep._general(spec, f, backend, x, t, contexts, last_only, y, out, flat, error, has_aux)


class Prep:
    """A preparation for one operator: the composed kernels and what they were made for.

    Build it with the matching ``di.prepare_<operator>`` and pass it as ``prep=``. Using it
    for other arguments raises :class:`~diffinterface.PreparationMismatchError`.
    """

    __slots__ = (
        "_call",
        "_explain",
        "_guard",
        "_has_aux",
        "_normalise",
        "_note",
        "_run_all",
        "_run_error",
        "_run_first",
        "_run_flat",
        "_run_last",
        "_run_out",
        "_run_out_error",
    )

    def __init__(self, parts: Parts) -> None:
        call, runs = parts.call, parts.runs
        self._call = call
        self._has_aux = call.has_aux
        self._guard = parts.guard
        self._run_all, self._run_last = runs["all"], runs["last"]
        self._run_flat = (runs["all_flat"], runs["last_flat"])
        self._run_error = (runs["all_error"], runs["last_error"])
        self._run_out, self._run_out_error = runs["out"], runs["out_error"]
        self._normalise, self._explain = parts.normalise, parts.explain
        #: a run-first preparation's checks before its kernel runs (the types of x's and the
        #: tangents' leaves) and after (operator, f, backend, contexts); None: check first
        self._run_first = parts.run_first
        self._note = f"(raised while diffinterface computed {call.spec.name} with {call.backend!r})"

    @property
    def operator(self) -> str:
        return self._call.spec.name

    @property
    def f(self) -> Callable[..., Any]:
        return self._call.f

    @property
    def backend(self) -> Any:
        return self._call.backend

    def __repr__(self) -> str:
        t = self._call.tangents
        batch = None if t is None else t.batch
        structure = self._call.structure
        x = describe(self._call.x[0]) if structure.is_array else structure.describe()
        return f"Prep({self.operator}, backend={self.backend!r}, x={x}, batch={batch})"

    def _run(self, run: Run, x: Any, t: Any, contexts: tuple[Any, ...]) -> Any:
        try:
            return run(x, t, contexts)
        except Exception as e:
            raise_original(e, self._note)
            raise

    def _general(
        self,
        spec: OperatorSpec,
        f: Callable[..., Any],
        backend: Any,
        x: Any,
        t: Any,
        contexts: tuple[Any, ...],
        last_only: bool,
        y: Any,
        out: Any,
        flat: bool,
        error: Any = False,
        has_aux: bool = False,
    ) -> Any:
        """Normalise the arguments, check them, run, and write ``y=`` and ``out=``."""
        x, t = self._normalise(x, t)
        report = self._explain(spec, f, backend, x, t, contexts, y, has_aux)
        if report is not None:
            raise PreparationMismatchError(report)
        every = not last_only or y is not None  # a mutating f's value is written into y
        run = self._run_all if every else self._run_last
        if flat:
            run = self._run_flat[0 if every else 1]
        if error is not False and error is not None:
            error_out = None if error is True else error
            return self._with_error(spec, x, t, contexts, every, last_only, y, out, flat, error_out)
        if run is None:
            raise InvalidArgumentError(
                f"This preparation of {spec.name} was made by an unprepared call, for "
                f"{'the operator alone' if every else 'its value variant'} only; prepare "
                f"with di.prepare_{spec.name}(...) to use it for both."
            )
        writes = self._run_out
        if last_only and writes is not None and y is None and type(out) is np.ndarray and not flat:
            return self._run(lambda x, t, c: writes(x, t, c, out), x, t, contexts)
        return self._written(self._run(run, x, t, contexts), y, out, last_only)

    def _written(self, result: Any, y: Any, out: Any, last_only: bool, *error: Any) -> Any:
        """``result`` with ``y=``, ``out=`` and (``error``: True and ``error_out``) the error
        estimate written (see :func:`~diffinterface._results.write_results`), paired with
        aux with has_aux."""
        if self._has_aux:  # (results, aux): y= and out= are the results'
            return write_results(result[0], y, out, last_only, *error), result[1]
        return write_results(result, y, out, last_only, *error)

    def _with_error(
        self,
        spec: OperatorSpec,
        x: Any,
        t: Any,
        contexts: tuple[Any, ...],
        every: bool,
        last_only: bool,
        y: Any,
        out: Any,
        flat: bool,
        error_out: Any,
    ) -> Any:
        """The results with an error estimate of the last one after them (written into
        ``error_out`` when given)."""
        run = self._run_error[0 if every else 1]
        if run is None or flat:
            what = "with flat=True" if flat else f"for {spec.name}"
            config = self._call.backend
            wrapped = getattr(config, "backend", None)  # Distributed's inner backend
            source = (
                f"{wrapped!r} gives them when called directly; {type(config).__name__} does "
                "not carry them. Call it without the wrapper for an estimate"
                if wrapped is not None and getattr(wrapped, "step", None) == "adaptive"
                else "Estimates come from finite differences with adaptive steps: "
                "di.AutoFiniteDiff(step='adaptive')"
            )
            raise UnsupportedError(f"{config!r} gives no error estimate {what}. {source}.")
        writes = self._run_out_error
        if (
            last_only
            and writes is not None
            and not self._has_aux
            and y is None
            and type(out) in _NUMPY_OR_NONE
            and type(error_out) in _NUMPY_OR_NONE
        ):  # the kernel writes straight into them
            return self._run(lambda x, t, c: writes(x, t, c, out, error_out), x, t, contexts)
        return self._written(self._run(run, x, t, contexts), y, out, last_only, True, error_out)


_NUMPY_OR_NONE = (np.ndarray, type(None))
