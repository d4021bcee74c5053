"""The refusals of the CasADi backend: what a trace with symbols cannot follow, and the way out.

Every refusal is a :class:`~diffinterface.UnsupportedError` raised while f is traced, so at
preparation; its message names the operation and the alternatives (write f another way, or
differentiate it with a backend that runs f on values).
"""

from __future__ import annotations

from typing import Any

from diffinterface._errors import UnsupportedError

__all__ = [
    "DATA_DEPENDENT",
    "IMMUTABLE",
    "NO_SUCH_OP",
    "NO_VALUES",
    "OTHERS",
    "TOO_MANY_DIMS",
    "NotInNamespaceError",
    "refuse",
]

OTHERS = 'a backend that runs f on values ("jax", "torch", "autograd" or "finitediff")'
DATA_DEPENDENT = (
    "{what} needs the value of an array that depends on x, and CasADi traces f once, with "
    "symbols that have no value. Write the choice as xp.where(condition, a, b) (CasADi keeps "
    f"both branches and picks one at each evaluation), or differentiate f with {OTHERS}."
)
IMMUTABLE = (
    "CasADi arrays are immutable ({what}). Build a new array instead: xp.where(mask, new, a), "
    "xp.concat([a[:i], xp.reshape(v, (1,)), a[i + 1:]]) or xp.stack([...]); or "
    f"differentiate f with {OTHERS}."
)
TOO_MANY_DIMS = (
    "CasADi arrays have at most 2 dimensions, and {what} would have shape {shape}. Keep f's "
    f"arrays 0-, 1- or 2-d (merge axes with xp.reshape), or differentiate f with {OTHERS}."
)
NO_SUCH_OP = (
    "The CasADi array namespace has no {what}. Write f with the names it has (listed in "
    f"docs/backends.md, section CasADi), or differentiate f with {OTHERS}."
)

NO_VALUES = (
    "CasADi traces f with symbolic arrays, which have no values to hand to {what}. Keep f "
    "within xp = di.array_namespace(x); differentiate f with {others}; or, for "
    "di.SecondOrder, make CasADi the inner backend: di.SecondOrder(outer, di.AutoCasADi())."
)


class NotInNamespaceError(UnsupportedError, AttributeError):
    """A name the CasADi namespace (or CasadiArray) lacks: hasattr() sees an AttributeError."""


def refuse(template: str, **values: Any) -> UnsupportedError:
    return UnsupportedError(template.format(**values))
