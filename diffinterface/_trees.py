"""The two tree operations a prepared call on structured x makes every time: take the
leaves of a tree that has x's structure, and build x's structure from leaves.

optree does both for any structure, and is what everything else uses; it takes about
1.4 µs to flatten a dict of two arrays (optree 0.20). Model parameters are almost always
plain dicts with string keys, lists and tuples, nested; for those a plan made once at
preparation, a getter and a builder per node (``operator.itemgetter`` where the node's
children are leaves), does the same in a fraction of that, and gives the same leaves in
the same order (checked against optree when the plan is made).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

import optree

__all__ = ["Structure"]

_PLAIN = (dict, list, tuple)

#: a node's getter: the leaves under it (a tuple or list), or None for another structure
Getter = Callable[[Any], Sequence[Any] | None]
#: a node's builder: the node, from the leaves of the whole structure
Builder = Callable[[Sequence[Any]], Any]


class Structure:
    """x's structure (an optree tree spec), with fast ``leaves`` and ``build``.

    ``leaves(tree)`` gives tree's leaves in optree's order if tree has x's structure, else
    None. The leaves themselves are not looked at (a list where x has an array comes back
    as a leaf): the caller compares their signatures. ``build(leaves)`` gives x's
    structure with these leaves, as ``optree.tree_unflatten`` builds it (dict keys in x's
    insertion order).
    """

    def __init__(self, tree: Any) -> None:
        leaves, self.treedef = optree.tree_flatten(tree, none_is_leaf=True)
        self.leaves: Getter
        self.build: Builder
        if _plain(tree):
            self.leaves, self.build = _plan(tree, self.treedef, [0])
            got = self.leaves(tree)
            if (
                got is None
                or len(got) != len(leaves)
                or any(a is not b for a, b in zip(got, leaves, strict=True))
            ):
                raise AssertionError("the plan of a structure disagrees with optree's leaves")
        else:
            self.leaves = self._optree_leaves
            self.build = partial(optree.tree_unflatten, self.treedef)

    def _optree_leaves(self, tree: Any) -> list[Any] | None:
        leaves, treedef = optree.tree_flatten(tree, none_is_leaf=True)
        return leaves if treedef == self.treedef else None

    def mapping(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``fn`` applied to each leaf of a tree of x's structure, or to one array (through
        optree for any other tree). Not for a tuple of x's structures: when x is a tuple,
        that would pass for x with tuples as leaves."""

        def map_leaves(tree: Any) -> Any:
            leaves = self.leaves(tree)
            if leaves is not None:
                return self.build([fn(a) for a in leaves])
            if not isinstance(tree, _PLAIN):  # one array (such as f's value)
                return fn(tree)
            return optree.tree_map(fn, tree, none_is_leaf=True)

        return map_leaves


def _taker(keys: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """``lambda t: tuple(t[k] for k in keys)``, by ``itemgetter`` (which gives the item
    itself, not a tuple, for one key)."""
    if len(keys) == 1:
        (key,) = keys
        return lambda t: (t[key],)
    if not keys:
        return lambda t: ()
    return itemgetter(*keys)


def _plan(tree: Any, treedef: Any, next_leaf: list[int]) -> tuple[Getter, Builder]:
    """The getter and builder of this node of a structure of plain dicts (string keys),
    lists and tuples, whose first leaf is leaf number ``next_leaf[0]``."""
    kind = type(tree)
    keys = tuple(treedef.entries())  # optree's leaf order: sorted keys for a dict
    children: list[Any] = []  # a leaf's index in the leaves, or a child node's plan
    for key, child_def in zip(keys, treedef.children(), strict=True):
        if child_def.is_leaf():
            children.append(next_leaf[0])
            next_leaf[0] += 1
        else:
            children.append(_plan(tree[key], child_def, next_leaf))
    n = len(keys)
    take: Callable[[Any], Sequence[Any]] = _taker(keys) if kind is dict else _identity
    flat = all(type(c) is int for c in children)

    def get(t: Any) -> Sequence[Any] | None:
        if type(t) is not kind or len(t) != n:
            return None
        try:
            items = take(t)
        except KeyError:  # a dict with other keys
            return None
        if flat:
            return items
        out: list[Any] = []
        for child, item in zip(children, items, strict=True):
            if type(child) is int:
                out.append(item)
                continue
            sub = child[0](item)
            if sub is None:
                return None
            out += sub
        return out

    # built in x's own key order (insertion order for a dict), as optree builds it
    order = [keys.index(k) for k in tree] if kind is dict else range(n)
    names = tuple(keys[i] for i in order)
    parts = [children[i] for i in order]
    if flat:
        pick = _taker(parts)
        if kind is dict and n == 1:
            (name,), (i,) = names, parts
            return get, lambda leaves: {name: leaves[i]}
        if kind is dict:  # pick gives one item per name; a keyword to zip costs 40 %
            return get, lambda leaves: dict(zip(names, pick(leaves)))  # noqa: B905
        return get, (lambda leaves: list(pick(leaves))) if kind is list else pick

    makers = [partial(_item, c) if type(c) is int else c[1] for c in parts]

    def build(leaves: Sequence[Any]) -> Any:
        items = [make(leaves) for make in makers]
        if kind is dict:
            return dict(zip(names, items, strict=True))
        return items if kind is list else tuple(items)

    return get, build


def _identity(t: Any) -> Any:
    return t


def _item(i: int, leaves: Sequence[Any]) -> Any:
    return leaves[i]


def _plain(tree: Any) -> bool:
    """Whether every node of tree is a plain dict with string keys, list or tuple."""
    t = type(tree)
    if t is dict:
        return all(type(k) is str for k in tree) and all(map(_plain, tree.values()))
    if t is list or t is tuple:
        return all(map(_plain, tree))
    return not isinstance(tree, _PLAIN)
