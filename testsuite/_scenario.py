"""Scenario: one differentiation problem with its expected result.

A scenario names an operator (``"gradient"``, ``"hvp"``, ...), the function, the point,
the tangents where the operator takes them, the contexts, and the reference: every output
of the operator's value variant (value first), given analytically or computed by a named
reference backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optree

import diffinterface as di
from diffinterface._arrays import dtype_name

__all__ = ["OPERATORS", "Scenario"]

#: operator -> (value variant, whether it takes tangents, whether it takes y=, order)
OPERATORS: dict[str, tuple[str, bool, bool, int]] = {
    "pushforward": ("value_and_pushforward", True, True, 1),
    "pullback": ("value_and_pullback", True, True, 1),
    "derivative": ("value_and_derivative", False, True, 1),
    "gradient": ("value_and_gradient", False, False, 1),
    "jacobian": ("value_and_jacobian", False, True, 1),
    "second_derivative": ("value_derivative_and_second_derivative", False, False, 2),
    "hvp": ("gradient_and_hvp", True, False, 2),
    "hessian": ("value_gradient_and_hessian", False, False, 2),
}


@dataclass(eq=False)
class Scenario:
    """One differentiation problem and its expected result.

    Args:
        operator: one of :data:`OPERATORS` (``"gradient"``, ``"jacobian"``, ...).
        f: ``f(x, *contexts)``, or with ``y`` a mutating ``f(y, x, *contexts)``.
        x: the point (NumPy array or Python number; see :meth:`with_kind` for others).
        tangents: tangent (or tuple of tangents) for pushforward, pullback and hvp.
        contexts: ``di.Constant`` / ``di.Cache`` arguments passed after x.
        y: for a mutating f, an array shaped like f's output (a template; copied per call).
        reference: every output of the operator's value variant, value first (e.g.
            ``(f(x), ∇f(x))`` for gradient), or a backend (object or name) that computes it.
        name: a short name for tables; made from the operator and shapes when omitted.
        batched: f for a batch of points on a leading axis (``(b,) + x.shape`` →
            ``(b,) + y.shape``), for backends that take a vectorised f
            (``AutoFiniteDiff(vectorized=True)``); None: one call of f per point
            (:meth:`vectorized`).

    Raises:
        ValueError: unknown operator, or tangents missing/extra for the operator.
    """

    operator: str
    f: Callable[..., Any]
    x: Any
    tangents: Any = None
    contexts: tuple[Any, ...] = ()
    y: Any = None
    reference: tuple[Any, ...] | di.AutoJAX | di.AutoTorch | di.AutoAutograd | str = "jax"
    name: str = ""
    batched: Callable[..., Any] | None = field(default=None, repr=False)
    _resolved: tuple[Any, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ValueError(
                f"Scenario operator {self.operator!r} is unknown; choose one of {list(OPERATORS)}."
            )
        _, takes_tangents, takes_y, _ = OPERATORS[self.operator]
        if takes_tangents != (self.tangents is not None):
            need = "needs tangents" if takes_tangents else "takes no tangents"
            raise ValueError(f"Scenario {self.operator}: the operator {need}.")
        if self.y is not None and not takes_y:
            raise ValueError(f"Scenario {self.operator}: the operator takes no y= (mutating f).")
        if not self.name:
            self.name = self._default_name()

    # -- description ------------------------------------------------------------------
    def _default_name(self) -> str:
        if isinstance(self.x, dict | list | tuple):
            shape = f"{type(self.x).__name__}({len(optree.tree_leaves(self.x))})"
        else:
            shape = "×".join(map(str, np.shape(self.x))) or "scalar"
        parts = [self.operator, getattr(self.f, "__name__", "f"), shape, _dtype_name(self.x)]
        if self.y is not None:
            parts.append("mutating")
        if isinstance(self.tangents, tuple):
            parts.append(f"batch{len(self.tangents)}")
        parts += [type(c).__name__ for c in self.contexts]
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"Scenario({self.name})"

    @property
    def order(self) -> int:
        """1 for first-order operators, 2 for second-order ones."""
        return OPERATORS[self.operator][3]

    @property
    def mutates(self) -> bool:
        """Whether f writes into arrays (``y=`` or a ``di.Cache`` context)."""
        return self.y is not None or any(isinstance(c, di.Cache) for c in self.contexts)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The floating dtype of x."""
        return np.dtype(_dtype_name(self.x))

    # -- calling ----------------------------------------------------------------------
    def arguments(self) -> tuple[Any, ...]:
        """The positional arguments after f and the backend: (x, [tangents,] *contexts)."""
        if self.tangents is None:
            return (self.x, *self.contexts)
        return (self.x, self.tangents, *self.contexts)

    def keywords(self) -> dict[str, Any]:
        """``y=`` (a fresh copy of the template) for a mutating f, else nothing."""
        if self.y is None:
            return {}
        return {"y": self.y.clone() if hasattr(self.y, "clone") else np.array(self.y)}

    def call(self, backend: Any, variant: str = "plain", **kwargs: Any) -> Any:
        """Run the operator (``variant="plain"``) or its value variant (``"value"``)."""
        name = self.operator if variant == "plain" else OPERATORS[self.operator][0]
        return getattr(di, name)(self.f, backend, *self.arguments(), **self.keywords(), **kwargs)

    def prepare(self, backend: Any) -> di.Prep:
        """``di.prepare_<operator>`` for this scenario."""
        prepare = getattr(di, f"prepare_{self.operator}")
        return prepare(self.f, backend, *self.arguments(), **self.keywords())

    def with_kind(self, kind: str) -> Scenario:
        """The same scenario with x, tangents and y as ``"torch"``, ``"jax"`` or
        ``"tensorflow"`` arrays.

        Raises:
            ValueError: a mutating scenario (y=) with ``"jax"`` or ``"tensorflow"``: their
                arrays are immutable.
        """
        if kind in ("jax", "tensorflow") and self.y is not None:
            raise ValueError(f"{self!r} writes into y=, which cannot be an immutable {kind} array.")
        convert = _converter(kind)

        def tree(a: Any) -> Any:
            return optree.tree_map(convert, a)

        return replace(
            self,
            x=tree(self.x),
            tangents=tree(self.tangents),
            y=tree(self.y),
            reference=self.expected(),
            name=f"{self.name} {kind}",
            _resolved=None,
        )

    def vectorized(self) -> Scenario:
        """The same scenario with f taking a batch of points on a leading axis (for
        ``AutoFiniteDiff(vectorized=True)``): its ``batched`` form, else f called on each
        point of the batch in turn (the leaves of a structured x each batched)."""
        f = self.batched or _one_call_per_point(self.f)
        return replace(self, f=f, batched=None, reference=self.expected(), _resolved=None)

    def expected(self) -> tuple[Any, ...]:
        """The reference outputs of the value variant (computed once if given as a backend)."""
        if self._resolved is None:
            if isinstance(self.reference, tuple):
                self._resolved = self.reference
            else:
                self._resolved = tuple(_to_numpy_tree(self.call(self.reference, "value")))
        return self._resolved


def _one_call_per_point(f: Callable[..., Any]) -> Callable[..., Any]:
    def batch_of_points(x: Any, *contexts: Any) -> Any:
        leaves, treedef = optree.tree_flatten(x)
        points = [
            optree.tree_unflatten(treedef, [leaf[i, ...] for leaf in leaves])
            for i in range(leaves[0].shape[0])
        ]
        xp = di.array_namespace(*leaves)
        return xp.stack([xp.asarray(f(point, *contexts)) for point in points])

    batch_of_points.__name__ = getattr(f, "__name__", "f")
    return batch_of_points


def _dtype_name(x: Any) -> str:
    x = optree.tree_leaves(x)[0]  # a structured x: its leaves share one dtype
    if isinstance(x, int | float):
        return "float64"
    return dtype_name(x)


def _to_numpy_tree(a: Any) -> Any:
    return optree.tree_map(_to_numpy, a)


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _converter(kind: str) -> Callable[[Any], Any]:
    """NumPy (or a Python number) to an array of ``kind`` with the same dtype."""
    if kind == "torch":
        import torch

        return lambda a: torch.from_numpy(np.array(a))
    if kind == "jax":
        import jax

        def to_jax(a: Any) -> Any:
            a = np.asarray(a)
            with jax.enable_x64(a.dtype == np.float64):
                return jax.device_put(a)

        return to_jax
    if kind == "tensorflow":
        import tensorflow as tf

        return lambda a: tf.constant(np.asarray(a))  # NumPy's dtype: float64 stays float64
    raise ValueError(f"Unknown array kind {kind!r}; choose 'torch', 'jax' or 'tensorflow'.")
