"""The one way an operator function runs: prepare when there is no preparation, then call
the preparation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._backend_types import BackendLike
from diffinterface._derived import OperatorSpec
from diffinterface._errors import InvalidArgumentError
from diffinterface._preparation import Prep
from diffinterface._prepare import Variant, prepare
from diffinterface._results import write_out

__all__ = ["run", "value_variant", "written"]


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
    """``prep``'s results for this call (preparing first when ``prep`` is None): the last
    output with ``last_only`` (written into ``out`` when given), else all of them; with
    ``error`` (True, or an array to write it into), an estimate of the last output's error
    after them; with ``has_aux``, all that paired with f's aux.

    Raises:
        InvalidArgumentError: ``prep`` is not a preparation.
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    if prep is None:
        variant: Variant = "last" if last_only and y is None else "all"
        prep = prepare(spec, f, backend, x, t, contexts, y, variant, has_aux)
    elif type(prep) is not Prep:
        raise InvalidArgumentError(
            f"prep= must come from di.prepare_{spec.name}(...); got {type(prep).__name__}."
        )
    return prep.results(spec, f, backend, x, t, contexts, last_only, y, out, flat, error, has_aux)


def written(result: Any, out: Any) -> Any:
    """``result``, or ``out`` with ``result`` written into it."""
    return result if out is None else write_out(out, result)


def value_variant(
    results: Any, out: Any, error: Any, derivatives: int, has_aux: bool = False
) -> Any:
    """A value variant's results with ``out=`` written: ``out`` is the array for its one
    derivative output (``derivatives`` 1), or a tuple of arrays for its last
    ``derivatives`` outputs; with ``error`` (True or an array) the error estimate stays
    last; with ``has_aux``, f's value comes paired with aux, ``((value, aux), ...)`` as
    JAX's ``value_and_grad(has_aux=True)`` gives it (``gradient_and_hvp``, which has no
    value: ``((gradient, hvp), aux)``)."""
    error = error is not False and error is not None
    if has_aux:
        main, aux = results
        done = value_variant(main, out, error, derivatives)
        if len(done) - error == derivatives:  # no value output
            return done, aux
        return ((done[0], aux), *done[1:])
    outputs = results[:-1] if error else results
    n = len(outputs)
    outs = (out,) if derivatives == 1 else out or (None,) * derivatives
    done = [*outputs[: n - derivatives]]
    done += [written(r, o) for r, o in zip(outputs[n - derivatives :], outs, strict=True)]
    return (*done, results[-1]) if error else tuple(done)
