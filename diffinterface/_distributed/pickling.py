"""How f and its contexts travel to the workers: cloudpickle, with a clear error on failure.

cloudpickle sends functions that their module's import cannot give back (closures, lambdas,
functions of ``__main__`` or a notebook) by value and the others by reference (their
module must be importable on the workers), as Dask does. One addition: a
``threading.local`` (the per-thread scratch buffers of ``di.Cache`` contexts) travels as a
new, empty one, since a worker's threads make their own buffers.

When something cannot be pickled, :func:`dumps` raises on the caller, before anything is
sent, an error naming the object that fails and where f holds it, not a traceback from a
worker.
"""

from __future__ import annotations

import io
import threading
import types
from typing import Any

import cloudpickle

from diffinterface._errors import InvalidArgumentError

__all__ = ["dumps"]

_CANNOT = (
    "di.Distributed sends {what} to the workers with cloudpickle, but {where} cannot be "
    "pickled ({error}). Create such an object inside f (each worker then makes its own), "
    "or hold picklable data instead (arrays, numbers, plain containers, module-level "
    "functions)."
)
_DEPTH = 8


class _Pickler(cloudpickle.Pickler):
    """cloudpickle's pickler; a ``threading.local`` becomes a new one on the worker."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is threading.local:
            return threading.local, ()
        return super().reducer_override(obj)


def _dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def dumps(obj: Any, what: str) -> bytes:
    """``obj`` pickled for the workers.

    Args:
        obj: what to send (f as the kernels call it, or the call's arguments).
        what: how the error names it ("f", "the contexts' values").

    Raises:
        InvalidArgumentError: naming the object that cannot be pickled and the way it is
            reached from f or the contexts.
    """
    try:
        return _dumps(obj)
    except Exception as e:
        path, culprit, error = _culprit(obj, [], set(), e)
        where = _describe(path, culprit)
        raise InvalidArgumentError(_CANNOT.format(what=what, where=where, error=error)) from e


def _picklable(obj: Any) -> BaseException | None:
    try:
        _dumps(obj)
    except Exception as e:
        return e
    return None


def _culprit(
    obj: Any, path: list[tuple[str, bool]], seen: set[int], error: BaseException
) -> tuple[list[tuple[str, bool]], Any, BaseException]:
    """The innermost object under ``obj`` (which fails to pickle with ``error``) that fails
    on its own, with the steps that reach it (each: a label, and whether it is a step
    inside diffinterface's own wrapping of f)."""
    seen.add(id(obj))
    if len(path) < _DEPTH:
        internal = not path or _is_internal(obj)
        for label, child in _children(obj):
            if id(child) in seen:
                continue
            child_error = _picklable(child)
            if child_error is not None:
                return _culprit(child, [*path, (label, internal)], seen, child_error)
    return path, obj, error


def _is_internal(obj: Any) -> bool:
    """A function of diffinterface's own (the wrappers of f that fold contexts in)."""
    module = getattr(obj, "__module__", None) or ""
    return isinstance(obj, types.FunctionType) and module.startswith("diffinterface.")


def _children(obj: Any) -> list[tuple[str, Any]]:
    """What pickling ``obj`` pickles too, each with a label for the error message."""
    if isinstance(obj, types.FunctionType):
        name = _function_name(obj)
        code = obj.__code__
        cells = [c.cell_contents if _filled(c) else None for c in obj.__closure__ or ()]
        found = [
            (f"the variable {var!r} captured by {name}", value)
            for var, value in zip(code.co_freevars, cells, strict=False)
        ]
        found += [
            (f"the global {g!r} used by {name}", obj.__globals__[g])
            for g in code.co_names
            if g in obj.__globals__
        ]
        return found + [(f"a default argument of {name}", d) for d in obj.__defaults__ or ()]
    if isinstance(obj, types.MethodType):
        return [(f"the object of the bound method {obj.__qualname__}", obj.__self__)]
    if isinstance(obj, dict):
        return [(f"the entry [{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, list | tuple | set | frozenset):
        return [(f"the item #{i}", v) for i, v in enumerate(obj)]
    attributes = getattr(obj, "__dict__", None)
    if isinstance(attributes, dict):
        return [(f"the attribute .{k}", v) for k, v in attributes.items()]
    slots = [s for c in type(obj).__mro__ for s in getattr(c, "__slots__", ())]
    return [(f"the attribute .{s}", getattr(obj, s)) for s in slots if hasattr(obj, s)]


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (an empty cell raises)
    except ValueError:
        return False
    return True


def _function_name(fn: types.FunctionType) -> str:
    code = fn.__code__
    return f"{fn.__qualname__} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"


def _describe(path: list[tuple[str, bool]], culprit: Any) -> str:
    """The culprit and the steps from the caller's objects to it, innermost first
    (diffinterface's own wrappers of f are left out)."""
    what = f"a {type(culprit).__module__}.{type(culprit).__qualname__}"
    if isinstance(culprit, types.FunctionType):
        what = f"the function {_function_name(culprit)}"
    steps = [label for label, internal in path if not internal]
    if not steps:
        return f"{what} ({culprit!r:.60})"
    return f"{what}, {', reached through '.join(reversed(steps))},"
