"""The two tree operations a prepared call on structured x makes every time: take the
leaves of a tree that has x's structure, and build x's structure from leaves.

optree does both for any structure, and is what everything else uses; it takes about
1.4 µs to flatten a dict of two arrays (optree 0.20). Model parameters are almost always
plain dicts with string keys, lists and tuples, nested; for those a plan made once at
preparation does the same in a fraction of that, and gives the same leaves in the same
order (checked against optree when the plan is made).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optree

__all__ = ["Structure"]

_PLAIN = (dict, list, tuple)


class _Node:
    """One dict, list or tuple of the structure: its keys in optree's leaf order (sorted,
    for a dict), its children (a leaf's index in the leaves, or a node) and, for a dict,
    its keys in insertion order (how optree rebuilds it)."""

    __slots__ = ("children", "keys", "leaf_slice", "ordered", "type")

    def __init__(self, tree: Any, treedef: Any, next_leaf: list[int]) -> None:
        self.type = type(tree)
        self.keys: tuple[Any, ...] = tuple(treedef.entries())
        self.ordered = tuple(tree) if self.type is dict and tuple(tree) != self.keys else None
        children: list[Any] = []
        for key, child_def in zip(self.keys, treedef.children(), strict=True):
            if child_def.is_leaf():
                children.append(next_leaf[0])
                next_leaf[0] += 1
            else:
                children.append(_Node(tree[key], child_def, next_leaf))
        self.children = tuple(children)
        #: where the children's leaves are, when every child is a leaf
        self.leaf_slice: slice | None = None
        if all(type(c) is int for c in children):
            start = children[0] if children else next_leaf[0]
            self.leaf_slice = slice(start, start + len(children))

    def collect(self, tree: Any, out: list[Any]) -> bool:
        """Append tree's leaves to ``out``; False if tree does not have this structure."""
        if type(tree) is not self.type or len(tree) != len(self.keys):
            return False
        if self.type is dict:
            try:
                items = [tree[k] for k in self.keys]
            except KeyError:
                return False
        else:
            items = tree
        if self.leaf_slice is not None:
            out += items
            return True
        for child, item in zip(self.children, items, strict=True):
            if type(child) is int:
                out.append(item)
            elif not child.collect(item, out):
                return False
        return True

    def build(self, leaves: list[Any]) -> Any:
        """This node of the structure, with these leaves."""
        if self.leaf_slice is not None:
            items = leaves[self.leaf_slice]
        else:
            items = [leaves[c] if type(c) is int else c.build(leaves) for c in self.children]
        if self.type is dict:
            built = dict(zip(self.keys, items, strict=True))
            return built if self.ordered is None else {k: built[k] for k in self.ordered}
        return items if self.type is list else tuple(items)


class Structure:
    """x's structure (an optree tree spec), with fast :meth:`leaves` and :meth:`build`."""

    def __init__(self, tree: Any) -> None:
        leaves, self.treedef = optree.tree_flatten(tree, none_is_leaf=True)
        self._plan = _plan(tree, self.treedef, leaves)

    def leaves(self, tree: Any) -> list[Any] | None:
        """tree's leaves, in optree's order, if tree has x's structure; else None. The
        leaves themselves are not looked at (a list where x has an array is returned as a
        leaf): the caller compares their signatures."""
        if self._plan is None:
            leaves, treedef = optree.tree_flatten(tree, none_is_leaf=True)
            return leaves if treedef == self.treedef else None
        out: list[Any] = []
        return out if self._plan.collect(tree, out) else None

    def build(self, leaves: list[Any]) -> Any:
        """x's structure with these leaves (as ``optree.tree_unflatten`` builds it)."""
        if self._plan is None:
            return optree.tree_unflatten(self.treedef, leaves)
        return self._plan.build(leaves)

    def mapping(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``fn`` applied to each leaf of a tree of x's structure (through optree for an
        array or any other tree). Not for a tuple of x's structures: when x is a tuple,
        that would pass for x with tuples as leaves."""

        def map_leaves(tree: Any) -> Any:
            leaves = self.leaves(tree)
            if leaves is None:
                return optree.tree_map(fn, tree, none_is_leaf=True)
            return self.build([fn(a) for a in leaves])

        return map_leaves


def _plan(tree: Any, treedef: Any, leaves: list[Any]) -> _Node | None:
    """The plan of a structure of plain dicts (string keys), lists and tuples; None for
    any other node (a namedtuple, an OrderedDict, ...), which then goes through optree."""
    if not _plain(tree):
        return None
    plan = _Node(tree, treedef, [0])
    out: list[Any] = []
    same = plan.collect(tree, out) and len(out) == len(leaves)
    if not same or not all(a is b for a, b in zip(out, leaves, strict=True)):
        raise AssertionError("the plan of a structure disagrees with optree's leaves")
    return plan


def _plain(tree: Any) -> bool:
    """Whether every node of tree is a plain dict with string keys, list or tuple."""
    t = type(tree)
    if t is dict:
        return all(type(k) is str for k in tree) and all(map(_plain, tree.values()))
    if t is list or t is tuple:
        return all(map(_plain, tree))
    return not isinstance(tree, _PLAIN)
