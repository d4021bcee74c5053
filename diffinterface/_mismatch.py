"""The explanation of a preparation used for other arguments: every argument slot, ✓ or ✗,
prepared against called (as DifferentiationInterface.jl's PreparationMismatchError)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._arguments import Call, same_backend, same_function
from diffinterface._arrays import describe, signature
from diffinterface._backend_types import resolve_backend
from diffinterface._compose import leaves_check, tangents_check
from diffinterface._contexts import check_contexts, context_signature
from diffinterface._errors import DiffInterfaceError
from diffinterface._trees import Args

__all__ = ["explainer"]


def explainer(call: Call) -> Callable[..., str | None]:
    """``explain(spec, f, backend, x, t, contexts, y, has_aux)``: the report of what differs from
    ``call`` (what the preparation was made for), or None when nothing does.

    Raises:
        InvalidArgumentError: a context is not wrapped in di.Constant or di.Cache.
    """
    x_ok = leaves_check(call.structure, call.x)
    t_ok = tangents_check(call)

    def explain(
        spec: Any,
        f: Any,
        backend: Any,
        x: Any,
        t: Any,
        contexts: tuple[Any, ...],
        y: Any,
        has_aux: bool = False,
    ) -> str | None:
        check_contexts(contexts)
        called_contexts = context_signature(contexts)
        y_sig = None if y is None else signature(y)
        rows = [
            ("operator", spec is call.spec, repr(call.spec.name), repr(spec.name)),
            ("f", same_function(call.f, f), _name(call.f), _name(f)),
            ("backend", same_backend(backend, call.backend), call.backend, _backend(backend)),
            ("x", same_x := x_ok(x), _x_prepared(call), _x_text(call, x, same_x)),
            ("tangents", t_ok(t), _t_text(call), _shape_text(t)),
            (
                "contexts",
                called_contexts == call.contexts,
                _contexts_text(call.contexts),
                _contexts_text(called_contexts),
            ),
            ("y", y_sig == call.y, _sig_text(call.y), _sig_text(y_sig)),
            ("has_aux", has_aux == call.has_aux, repr(call.has_aux), repr(has_aux)),
        ]
        if all(same for _, same, _, _ in rows):
            return None
        lines = [
            f"  {'✓' if same else '✗'} {name}: prepared {_text(a)}, called {_text(b)}"
            for name, same, a, b in rows
        ]
        return (
            "This preparation was made for other arguments:\n"
            + "\n".join(lines)
            + f"\nPrepare again with di.prepare_{spec.name}(...) for the new arguments, "
            "or call without prep= (prepares each call)."
        )

    return explain


def _name(f: Any) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)


def _text(a: Any) -> str:
    return a if isinstance(a, str) else repr(a)


def _backend(b: Any) -> Any:
    try:
        return resolve_backend(b)
    except DiffInterfaceError:
        return b


def _x_prepared(call: Call) -> str:
    return describe(call.x[0]) if call.structure.is_array else call.structure.describe()


def _sig_text(sig: Any) -> str:
    return "none" if sig is None else describe(sig)


def _contexts_text(signatures: tuple[Any, ...]) -> str:
    if not signatures:
        return "none"
    parts = []
    for kind_name, sig in signatures:
        inner = repr(sig[1]) if sig[0] == "value" else describe(sig)
        parts.append(f"{kind_name}({inner})")
    return ", ".join(parts)


def _x_text(call: Call, x: Any, same: bool) -> str:
    structure = call.structure
    if same:
        return _x_prepared(call)
    if structure.is_array:
        if isinstance(x, dict | list | tuple):
            return f"a {type(x).__name__} (prepared for one array)"
        return describe(signature(x))
    if not isinstance(x, dict | list | tuple):
        return f"{describe(signature(x))} (prepared for a structured x)"
    if structure.args and type(x) is not Args:
        return f"a {type(x).__name__}, one argument (prepared for di.Args: several arguments)"
    return structure.difference(call.x, x)


def _t_text(call: Call) -> str:
    t = call.tangents
    if t is None:
        return "none"
    layout, signatures = t.signature
    what = "one" if layout == "one" else f"a batch of {layout}"
    return f"{what} ({', '.join(describe(s) for sig in signatures for s in sig)})"


def _shape_text(t: Any) -> str:
    if t is None:
        return "none"
    if isinstance(t, tuple):
        return f"a tuple of {len(t)}"
    return describe(signature(t)) if not isinstance(t, dict | list) else type(t).__name__
