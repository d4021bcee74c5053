"""The value variants' results as the caller gets them (``out=`` written); the operators
run through ``diffinterface._preparation.run``."""

from __future__ import annotations

from typing import Any

from diffinterface._results import write_out

__all__ = ["value_variant", "written"]


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
