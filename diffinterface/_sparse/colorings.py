"""Greedy graph colourings of sparsity patterns: which products can share one seed.

* Column colouring (forward mode): two columns may share a colour when no row has a
  nonzero in both (a distance-2 colouring of the bipartite row/column graph). One
  pushforward per colour then gives every column of its group without overlap.
* Row colouring (reverse mode): the same on the transposed pattern, one pullback per colour.
* Star colouring (symmetric Hessians): a proper colouring of the adjacency graph in which
  every path on four vertices uses at least three colours; each nonzero can then be read
  directly from one of the compressed products (Coleman & Moré), with fewer colours than a
  column colouring.

Written here: scipy has no colouring, and networkx colours general graphs at distance 1 only.
The greedy order is ``"natural"``, ``"largest_first"`` (by degree) or ``"smallest_last"``.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["column_coloring", "row_coloring", "star_coloring"]

ORDERS = ("natural", "largest_first", "smallest_last")


def _adjacency(graph: Any) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of a symmetric boolean graph without self-loops."""
    graph = sp.csr_array(graph, dtype=bool, copy=True)
    graph.setdiag(False)
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph.indptr, graph.indices


def _order(indptr: np.ndarray, indices: np.ndarray, order: str) -> list[int]:
    degree = np.diff(indptr)
    n = degree.size
    if order == "natural":
        return list(range(n))
    if order == "largest_first":
        return [int(v) for v in np.argsort(-degree, kind="stable")]
    # smallest last: repeatedly remove a vertex of least remaining degree; colour in reverse.
    current = degree.copy()
    removed = np.zeros(n, dtype=bool)
    heap = [(int(d), v) for v, d in enumerate(current)]
    heapq.heapify(heap)
    removal: list[int] = []
    while heap:
        d, v = heapq.heappop(heap)
        if removed[v] or d != current[v]:
            continue
        removed[v] = True
        removal.append(v)
        for w in indices[indptr[v] : indptr[v + 1]]:
            if not removed[w]:
                current[w] -= 1
                heapq.heappush(heap, (int(current[w]), int(w)))
    return removal[::-1]


def _greedy(indptr: np.ndarray, indices: np.ndarray, order: str) -> np.ndarray:
    """Smallest colour not used by a neighbour, vertex by vertex (distance-1 greedy)."""
    n = indptr.size - 1
    colors = np.full(n, -1, dtype=np.int64)
    mark = np.full(n + 1, -1, dtype=np.int64)
    for v in _order(indptr, indices, order):
        for w in indices[indptr[v] : indptr[v + 1]]:
            if colors[w] >= 0:
                mark[colors[w]] = v
        c = 0
        while mark[c] == v:
            c += 1
        colors[v] = c
    return colors


def column_coloring(pattern: Any, order: str = "largest_first") -> np.ndarray:
    """Colours of the columns of ``pattern`` (m × n) such that columns of one colour share
    no row: a greedy colouring of the column intersection graph PᵀP."""
    p = sp.csr_array(pattern, dtype=bool)
    return _greedy(*_adjacency(p.T @ p), order)


def row_coloring(pattern: Any, order: str = "largest_first") -> np.ndarray:
    """Colours of the rows of ``pattern`` such that rows of one colour share no column."""
    return column_coloring(sp.csr_array(pattern, dtype=bool).T, order)


def star_coloring(pattern: Any, order: str = "largest_first") -> np.ndarray:
    """A star colouring of the symmetric ``pattern`` (n × n), greedy in ``order``.

    When vertex v gets a colour, the colours that would close a two-coloured path on four
    vertices through v are forbidden as well as its neighbours' colours:
    v - w - x - y with colour(x) = colour(v) and colour(y) = colour(w) (v at an end), and
    a - v - w - x with colour(a) = colour(w) and colour(x) = colour(v) (v inside).
    """
    indptr, indices = _adjacency(pattern)
    n = indptr.size - 1
    colors = np.full(n, -1, dtype=np.int64)
    forbidden: set[int] = set()

    def neighbours(v: int) -> np.ndarray:
        return indices[indptr[v] : indptr[v + 1]]

    for v in _order(indptr, indices, order):
        forbidden.clear()
        seen: dict[int, list[int]] = {}  # colour -> coloured neighbours of v with it
        for w in neighbours(v):
            cw = int(colors[w])
            if cw < 0:
                continue
            forbidden.add(cw)
            seen.setdefault(cw, []).append(int(w))
        for cw, ws in seen.items():
            for w in ws:
                for x in neighbours(w):
                    cx = int(colors[x])
                    if x == v or cx < 0:
                        continue
                    if len(ws) > 1:  # a - v - w - x with colour(a) = colour(w)
                        forbidden.add(cx)
                    elif any(y != w and colors[y] == cw for y in neighbours(x)):
                        forbidden.add(cx)  # v - w - x - y with colour(y) = colour(w)
        c = 0
        while c in forbidden:
            c += 1
        colors[v] = c
    return colors
