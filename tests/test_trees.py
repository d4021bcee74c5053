"""diffinterface._trees.Structure against optree, the reference it stands in for: the same
leaves in the same order, the same rebuilt trees (key order included), and None for every
tree of another structure."""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any

import numpy as np
import optree
import pytest

from diffinterface._trees import Structure

A, B, C, D = (np.full(2, float(i)) for i in range(4))
Pair = namedtuple("Pair", "u v")

STRUCTURES = {
    "dict, unsorted keys": {"W2": A, "b": B, "W1": C},
    "nested": {"layer": [A, (B, {"z": C, "y": D})], "out": {}},
    "list": [A, B],
    "tuple of one": (A,),
    "OrderedDict": OrderedDict(b=A, a=B),
    "namedtuple inside": {"p": Pair(A, B)},
    "int keys": {2: A, 1: B},
}


def ref_leaves(tree: Any) -> list[Any]:
    return optree.tree_leaves(tree, none_is_leaf=True)


@pytest.mark.parametrize("name", STRUCTURES)
def test_leaves_and_build_match_optree(name: str) -> None:
    tree = STRUCTURES[name]
    s = Structure(tree)
    got = s.leaves(tree)
    assert got is not None
    want = ref_leaves(tree)
    assert len(got) == len(want) and all(a is b for a, b in zip(got, want, strict=True))
    new = [np.full(2, 10.0 + i) for i in range(len(want))]
    built, ref = s.build(new), optree.tree_unflatten(s.treedef, new)
    assert repr(built) == repr(ref)  # same types, key order and leaves
    doubled = s.build([2 * a for a in got])
    assert repr(doubled) == repr(optree.tree_map(lambda a: 2 * a, tree))


@pytest.mark.parametrize(
    "other",
    [
        {"W2": A, "b": B},  # a key missing
        {"W2": A, "b": B, "W1": C, "W3": D},  # a key more
        {"W2": A, "b": B, "W0": C},  # another key
        [A, B, C],  # another container
        OrderedDict(W2=A, b=B, W1=C),  # a dict subclass
    ],
)
def test_another_structure_has_no_leaves(other: Any) -> None:
    s = Structure(STRUCTURES["dict, unsorted keys"])
    assert s.leaves(other) is None
    assert optree.tree_structure(other, none_is_leaf=True) != s.treedef


def test_leaves_themselves_are_not_checked() -> None:
    """A list where x has an array comes back as a leaf: callers compare the leaves'
    signatures (execute_structured), which refuses it."""
    s = Structure(STRUCTURES["dict, unsorted keys"])
    assert list(s.leaves({"W2": A, "b": B, "W1": [C]}) or ()) == [[C], A, B]


def test_keys_in_another_insertion_order_are_the_same_structure() -> None:
    s = Structure({"W2": A, "b": B, "W1": C})
    assert list(s.leaves({"W1": C, "W2": A, "b": B}) or ()) == ref_leaves(
        {"W1": C, "W2": A, "b": B}
    )


def test_structures_without_a_plan_go_through_optree() -> None:
    for name in ("OrderedDict", "namedtuple inside", "int keys"):
        s = Structure(STRUCTURES[name])
        assert s.leaves({"p": A}) is None
        assert s.leaves(STRUCTURES[name]) == ref_leaves(STRUCTURES[name])


def test_an_array_is_the_structure_of_one_leaf() -> None:
    s = Structure(A)
    assert s.is_array and s.leaves(A) == (A,) and s.build([B]) is B
    assert s.cut(A) == [A]  # the one array the operators see is the leaf itself
