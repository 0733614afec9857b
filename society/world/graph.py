"""The social graph: an undirected CSR adjacency, fast seeded builders, summary statistics and neighbour kernels.

Conventions:

* Nodes are ``0..n-1``. ``indptr`` (int64, length ``n+1``) and ``indices`` (int64) hold every undirected edge in
  both directions; each neighbour list is sorted ascending, with no self-loops and no duplicates.
* Builders take a ``numpy.random.Generator`` and never touch the global RNG; numba kernels advance the generator
  they are passed, so a builder given identically seeded generators returns identical arrays.
* Builders scale to a million nodes: they are vectorised numpy or numba loops, never Python loops over edges.
  Edges are encoded as ``min * n + max`` (int64), which holds for ``n`` up to about 3e9.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from society.core import kernel_threads  # noqa: F401 -- starts Numba's threads before any kernel here runs

if TYPE_CHECKING:
    import networkx as nx

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
PathLike = str | os.PathLike[str]


# ---- the graph ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SocialGraph:
    """An undirected graph over nodes ``0..n-1`` in CSR form, with an optional block (village/faction) per node.

    Equality and hashing are by identity (the fields are arrays); compare ``indptr``/``indices`` to compare graphs.
    """

    n: int
    indptr: IntArray
    indices: IntArray
    blocks: IntArray | None = None

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"expected n >= 0, got {self.n}")
        if self.indptr.dtype != np.int64 or self.indptr.shape != (self.n + 1,):
            raise ValueError(f"expected indptr as int64 of length n+1={self.n + 1}, got {self.indptr.dtype} "
                             f"of shape {self.indptr.shape}")
        if self.indices.dtype != np.int64 or self.indices.ndim != 1:
            raise ValueError(f"expected indices as a 1-D int64 array, got {self.indices.dtype} "
                             f"of shape {self.indices.shape}")
        if self.indptr[0] != 0 or self.indptr[-1] != self.indices.size:
            raise ValueError(f"expected indptr to run from 0 to len(indices)={self.indices.size}, "
                             f"got {self.indptr[0]}..{self.indptr[-1]}")
        if self.blocks is not None and (self.blocks.dtype != np.int64 or self.blocks.shape != (self.n,)):
            raise ValueError(f"expected blocks as int64 of length n={self.n}, got {self.blocks.dtype} "
                             f"of shape {self.blocks.shape}")

    @property
    def degrees(self) -> IntArray:
        """Each node's number of neighbours."""
        return np.diff(self.indptr)

    @property
    def num_edges(self) -> int:
        """The number of undirected edges."""
        return self.indices.size // 2

    def neighbors(self, i: int) -> IntArray:
        """Node `i`'s neighbours, ascending (a read-only view into `indices`)."""
        if not 0 <= i < self.n:
            raise IndexError(f"node {i} is outside 0..{self.n - 1}")
        view = self.indices[self.indptr[i] : self.indptr[i + 1]]
        view.flags.writeable = False
        return view

    def edges(self) -> tuple[IntArray, IntArray]:
        """Every undirected edge once, as arrays (u, v) with u < v, sorted by (u, v)."""
        rows = np.repeat(np.arange(self.n, dtype=np.int64), self.degrees)
        upper = rows < self.indices
        return rows[upper], self.indices[upper]

    def to_networkx(self) -> nx.Graph:
        """A networkx Graph with all n nodes (and a 'block' node attribute when blocks are set)."""
        import networkx as nx  # only here and in from_graphml: a run builds its graphs without it

        graph = nx.Graph()
        if self.blocks is None:
            graph.add_nodes_from(range(self.n))
        else:
            graph.add_nodes_from((i, {"block": b}) for i, b in enumerate(self.blocks.tolist()))
        u, v = self.edges()
        graph.add_edges_from(zip(u.tolist(), v.tolist()))
        return graph

    @classmethod
    def from_edges(cls, n: int, u: ArrayLike, v: ArrayLike, blocks: ArrayLike | None = None) -> SocialGraph:
        """The graph on n nodes with edges u[e]-v[e], symmetrised, without self-loops or duplicates."""
        if n < 0:
            raise ValueError(f"expected n >= 0, got {n}")
        u = np.asarray(u, dtype=np.int64).ravel()
        v = np.asarray(v, dtype=np.int64).ravel()
        if u.shape != v.shape:
            raise ValueError(f"expected u and v of equal length, got {u.size} and {v.size}")
        if u.size and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n):
            raise ValueError(f"expected node ids in 0..{n - 1}, got ids from {min(u.min(), v.min())} "
                             f"to {max(u.max(), v.max())}")
        loop = u == v
        if loop.any():
            u, v = u[~loop], v[~loop]
        keys = np.sort(np.minimum(u, v) * n + np.maximum(u, v))
        if keys.size:
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        indptr, indices = _csr_from_sorted_pairs(n, keys // max(n, 1), keys % max(n, 1))
        if blocks is not None:
            blocks = np.asarray(blocks, dtype=np.int64)
        return cls(n, indptr, indices, blocks)


@numba.njit(cache=True, nogil=True)
def _csr_from_sorted_pairs(n: int, lo: IntArray, hi: IntArray) -> tuple[IntArray, IntArray]:
    """CSR arrays of the distinct edges lo[e] < hi[e], given sorted by (lo, hi)."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    lower = np.zeros(n, dtype=np.int64)
    for e in range(lo.size):
        indptr[lo[e] + 1] += 1
        indptr[hi[e] + 1] += 1
        lower[hi[e]] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    below = indptr[:-1].copy()  # next slot for a neighbour smaller than the row
    above = indptr[:-1] + lower  # next slot for a neighbour larger than the row
    indices = np.empty(2 * lo.size, dtype=np.int64)
    for e in range(lo.size):
        indices[above[lo[e]]] = hi[e]
        above[lo[e]] += 1
        indices[below[hi[e]]] = lo[e]
        below[hi[e]] += 1
    return indptr, indices


# ---- parameter checks -----------------------------------------------------------------------------------------


def _check_nodes(n: int) -> None:
    if n < 0:
        raise ValueError(f"expected a number of nodes n >= 0, got {n}")


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"expected a probability {name} in [0, 1], got {p}")


def _check_lattice_k(n: int, k: int) -> None:
    if k < 0 or k % 2 or k >= n:
        raise ValueError(f"expected an even k with 0 <= k < n={n}, got k={k}")


# ---- hash set of non-negative int64 keys (open addressing, linear probing) -------------------------------------


@numba.njit(cache=True, nogil=True)
def _set_new(capacity: int) -> IntArray:
    """An empty set that holds up to `capacity` keys at load factor at most one half."""
    size = 8
    while size < 2 * capacity:
        size *= 2
    return np.full(size, -1, dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _set_slot(table: IntArray, key: int) -> int:
    """The slot holding `key`, or the empty slot where it would go."""
    mask = np.uint64(table.size - 1)
    x = np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
    slot = np.int64((x ^ (x >> np.uint64(31))) & mask)
    while table[slot] != -1 and table[slot] != key:
        slot = (slot + 1) & (table.size - 1)
    return slot


@numba.njit(cache=True, nogil=True)
def _set_add(table: IntArray, key: int) -> bool:
    """Add `key`; True if it was not there yet."""
    slot = _set_slot(table, key)
    if table[slot] == key:
        return False
    table[slot] = key
    return True


@numba.njit(cache=True, nogil=True)
def _set_contains(table: IntArray, key: int) -> bool:
    """Whether `key` is in the set."""
    return table[_set_slot(table, key)] == key


# ---- random pair sampling -------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _distinct_draws(spaces: IntArray, counts: IntArray, rng: np.random.Generator) -> IntArray:
    """For each group g, counts[g] distinct uniform integers in [0, spaces[g]), concatenated group after group.

    Sparse groups draw with rejection; a group asking for more than half its space draws the values to leave out.
    """
    out = np.empty(counts.sum(), dtype=np.int64)
    start = 0
    for g in range(spaces.size):
        space, count = spaces[g], counts[g]
        dense = 2 * count > space
        wanted = space - count if dense else count
        seen = _set_new(wanted)
        got = 0
        while got < wanted:
            t = np.int64(rng.random() * space)
            if _set_add(seen, t):
                if not dense:
                    out[start + got] = t
                got += 1
        if dense:
            k = start
            for t in range(space):
                if not _set_contains(seen, t):
                    out[k] = t
                    k += 1
        start += count
    return out


def _triangle_pairs(t: IntArray) -> tuple[IntArray, IntArray]:
    """Decode pair indices t = i(i-1)/2 + j into the pairs (j, i) with 0 <= j < i."""
    i = ((1.0 + np.sqrt(1.0 + 8.0 * t.astype(np.float64))) // 2).astype(np.int64)
    i -= i * (i - 1) // 2 > t
    i += (i + 1) * i // 2 <= t
    return t - i * (i - 1) // 2, i


# ---- builders -------------------------------------------------------------------------------------------------


def _lattice_edges(n: int, half: int) -> tuple[IntArray, IntArray]:
    """Ring-lattice edges u - (u + j) mod n for j = 1..half, ordered by j then u."""
    u = np.tile(np.arange(n, dtype=np.int64), half)
    v = (u + np.repeat(np.arange(1, half + 1, dtype=np.int64), n)) % max(n, 1)
    return u, v


@numba.njit(cache=True, nogil=True)
def _rewire(n: int, half: int, u: IntArray, v: IntArray, rewire: IntArray, rng: np.random.Generator) -> None:
    """Rewire the far end of lattice edges e in `rewire` (in order) to uniform nodes, as networkx does, in place.

    Lattice edge e = (j - 1) * n + u joins u and (u + j) mod n; a new end avoids u and u's current neighbours,
    and a node already adjacent to every other node keeps its edge.
    """
    degree = np.full(n, 2 * half, dtype=np.int64)
    added = _set_new(rewire.size)
    for e in rewire:
        a = u[e]
        if degree[a] >= n - 1:
            continue
        while True:
            w = np.int64(rng.random() * n)
            if w == a:
                continue
            d = (w - a) % n
            if d <= half:
                present = v[(d - 1) * n + a] == w
            elif d >= n - half:
                present = v[(n - d - 1) * n + w] == a
            else:
                present = False
            if not present and _set_add(added, min(a, w) * n + max(a, w)):
                break
        degree[v[e]] -= 1
        degree[w] += 1
        v[e] = w


def watts_strogatz(n: int, k: int, p: float, rng: np.random.Generator) -> SocialGraph:
    """Watts-Strogatz small world: a ring lattice of k nearest neighbours, each edge's far end rewired w.p. p."""
    _check_nodes(n)
    _check_lattice_k(n, k)
    _check_probability("p", p)
    u, v = _lattice_edges(n, k // 2)
    _rewire(n, k // 2, u, v, np.flatnonzero(rng.random(u.size) < p), rng)
    return SocialGraph.from_edges(n, u, v)


@numba.njit(cache=True, nogil=True)
def _preferential_edges(n: int, m: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Barabasi-Albert edges: a star on m+1 nodes, then each new node links to m distinct degree-weighted nodes."""
    total = m * (n - m)
    src = np.empty(total, dtype=np.int64)
    dst = np.empty(total, dtype=np.int64)
    repeated = np.empty(2 * total, dtype=np.int64)  # every node once per incident edge
    for e in range(m):
        src[e], dst[e] = 0, e + 1
        repeated[2 * e], repeated[2 * e + 1] = 0, e + 1
    e, size = m, 2 * m
    targets = np.empty(m, dtype=np.int64)
    for source in range(m + 1, n):
        chosen = 0
        while chosen < m:
            x = repeated[np.int64(rng.random() * size)]
            fresh = True
            for c in range(chosen):
                if targets[c] == x:
                    fresh = False
                    break
            if fresh:
                targets[chosen] = x
                chosen += 1
        for c in range(m):
            src[e], dst[e] = source, targets[c]
            repeated[size], repeated[size + 1] = targets[c], source
            e += 1
            size += 2
    return src, dst


def barabasi_albert(n: int, m: int, rng: np.random.Generator) -> SocialGraph:
    """Barabasi-Albert preferential attachment: m*(n-m) edges, each new node bringing m of them."""
    _check_nodes(n)
    if not 1 <= m < n:
        raise ValueError(f"expected 1 <= m < n={n}, got m={m}")
    return SocialGraph.from_edges(n, *_preferential_edges(n, m, rng))


def erdos_renyi(n: int, p: float, rng: np.random.Generator) -> SocialGraph:
    """Erdos-Renyi G(n, p): a Binomial(n(n-1)/2, p) number of distinct uniform node pairs."""
    _check_nodes(n)
    _check_probability("p", p)
    space = n * (n - 1) // 2
    count = rng.binomial(space, p)
    j, i = _triangle_pairs(_distinct_draws(np.array([space], np.int64), np.array([count], np.int64), rng))
    return SocialGraph.from_edges(n, j, i)


def stochastic_block(sizes: list[int], p_in: float, p_out: float, rng: np.random.Generator) -> SocialGraph:
    """Stochastic block model: consecutive blocks of the given sizes, pairs linked w.p. p_in within, p_out across."""
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    if sizes_arr.ndim != 1 or sizes_arr.size == 0 or (sizes_arr < 0).any():
        raise ValueError(f"expected a non-empty list of block sizes >= 0, got {sizes!r}")
    _check_probability("p_in", p_in)
    _check_probability("p_out", p_out)
    n = int(sizes_arr.sum())
    end = np.cumsum(sizes_arr)
    start = end - sizes_arr
    # group 2b: pairs inside block b; group 2b+1: pairs between block b and all later blocks (one rectangle)
    later = n - end
    spaces = np.stack([sizes_arr * (sizes_arr - 1) // 2, sizes_arr * later], axis=1).ravel()
    probs = np.tile([p_in, p_out], sizes_arr.size)
    counts = rng.binomial(spaces, probs).astype(np.int64)
    t = _distinct_draws(spaces, counts, rng)
    group = np.repeat(np.arange(spaces.size), counts)
    block = group // 2
    inside = group % 2 == 0
    j, i = _triangle_pairs(t[inside])
    width = later[block[~inside]]
    u = np.empty(t.size, dtype=np.int64)
    v = np.empty(t.size, dtype=np.int64)
    u[inside] = start[block[inside]] + j
    v[inside] = start[block[inside]] + i
    u[~inside] = start[block[~inside]] + t[~inside] // width
    v[~inside] = end[block[~inside]] + t[~inside] % width
    blocks = np.repeat(np.arange(sizes_arr.size, dtype=np.int64), sizes_arr)
    return SocialGraph.from_edges(n, u, v, blocks)


def complete(n: int) -> SocialGraph:
    """The complete graph on n nodes."""
    _check_nodes(n)
    u, v = np.triu_indices(n, 1)
    return SocialGraph.from_edges(n, u, v)


def ring(n: int, k: int) -> SocialGraph:
    """A ring lattice: each node linked to its k nearest neighbours (k/2 on each side)."""
    _check_nodes(n)
    _check_lattice_k(n, k)
    return SocialGraph.from_edges(n, *_lattice_edges(n, k // 2))


def grid(rows: int, cols: int, periodic: bool) -> SocialGraph:
    """A rows x cols 2-D lattice (node r*cols + c), wrapped into a torus when periodic."""
    if rows < 1 or cols < 1:
        raise ValueError(f"expected rows >= 1 and cols >= 1, got rows={rows}, cols={cols}")
    node = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    pairs = [(node[:, :-1], node[:, 1:]), (node[:-1, :], node[1:, :])]
    if periodic:
        pairs += [(node[:, -1], node[:, 0]), (node[-1, :], node[0, :])]
    u = np.concatenate([a.ravel() for a, _ in pairs])
    v = np.concatenate([b.ravel() for _, b in pairs])
    return SocialGraph.from_edges(rows * cols, u, v)


# ---- files ----------------------------------------------------------------------------------------------------


def from_edgelist(path: PathLike, n: int | None = None) -> SocialGraph:
    """A graph from whitespace-separated integer id pairs in 0..n-1, '#' comments (n defaults to max id + 1)."""
    if n is not None:
        _check_nodes(n)
    us: list[int] = []
    vs: list[int] = []
    # Messages name the line, never echo it: a scenario may name any file as its graph.
    with open(path, encoding="utf-8") as lines:
        try:
            for number, line in enumerate(lines, start=1):
                fields = line.split("#", 1)[0].split()
                if not fields:
                    continue
                try:
                    a, b = map(int, fields)  # a wrong number of fields fails to unpack with ValueError too
                except ValueError:
                    raise ValueError(f"{path}, line {number}: expected two integer node ids") from None
                if min(a, b) < 0 or (n is not None and max(a, b) >= n):
                    limit = "" if n is None else f" (n={n})"
                    raise ValueError(f"{path}, line {number}: expected node ids in 0..n-1{limit}")
                us.append(a)
                vs.append(b)
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not UTF-8 text (an edge list is a text file of node id pairs)") from None
    if n is None:
        n = max(max(us, default=-1), max(vs, default=-1)) + 1
    return SocialGraph.from_edges(n, us, vs)


def from_graphml(path: PathLike) -> SocialGraph:
    """A GraphML graph, nodes renumbered 0..n-1 by sorted id (numeric if all int); int 'block'/'faction' -> blocks."""
    import networkx as nx

    try:
        source = nx.read_graphml(path)
    except ElementTree.ParseError as error:
        raise ValueError(f"{path}: not a GraphML (XML) file ({error})") from None
    ids = list(source.nodes)
    try:
        ids.sort(key=int)
    except (TypeError, ValueError):
        ids.sort(key=str)
    index = {node: i for i, node in enumerate(ids)}
    pairs = np.array([(index[a], index[b]) for a, b in source.edges()], dtype=np.int64).reshape(-1, 2)
    blocks = None
    for name in ("block", "faction"):
        values = [source.nodes[node].get(name) for node in ids]
        if any(value is not None for value in values):
            if not all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values):
                raise ValueError(f"{path}: expected an integer node attribute {name!r} >= 0 on every node")
            blocks = values
            break
    return SocialGraph.from_edges(len(ids), pairs[:, 0], pairs[:, 1], blocks)


# ---- statistics -----------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _triangles(indptr: IntArray, indices: IntArray) -> IntArray:
    """Triangles through each node, counting each triangle once via edges oriented from lower to higher degree."""
    n = indptr.size - 1
    degree = np.diff(indptr)
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    out_idx = np.empty(indices.size // 2, dtype=np.int64)
    for i in range(n):
        k = out_ptr[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if degree[j] > degree[i] or (degree[j] == degree[i] and j > i):
                out_idx[k] = j
                k += 1
        out_ptr[i + 1] = k
    triangles = np.zeros(n, dtype=np.int64)
    for i in range(n):
        for p in range(out_ptr[i], out_ptr[i + 1]):
            j = out_idx[p]
            a, b = out_ptr[i], out_ptr[j]
            while a < out_ptr[i + 1] and b < out_ptr[j + 1]:
                if out_idx[a] < out_idx[b]:
                    a += 1
                elif out_idx[a] > out_idx[b]:
                    b += 1
                else:
                    triangles[i] += 1
                    triangles[j] += 1
                    triangles[out_idx[a]] += 1
                    a += 1
                    b += 1
    return triangles


@numba.njit(cache=True, nogil=True)
def _component_roots(indptr: IntArray, indices: IntArray) -> IntArray:
    """Each node's component representative (its smallest node), by union-find with path halving."""
    n = indptr.size - 1
    parent = np.arange(n)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            a, b = i, indices[p]
            if b < i:
                continue
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            if a < b:
                parent[b] = a
            elif b < a:
                parent[a] = b
    for i in range(n):
        parent[i] = parent[parent[i]]  # parents have smaller ids, so they are already resolved
    return parent


def graph_stats(g: SocialGraph) -> dict[str, Any]:
    """Size, degree, exact average clustering (networkx's definition) and component statistics, as plain numbers."""
    degree = g.degrees
    triangles = _triangles(g.indptr, g.indices)
    pairs = degree * (degree - 1)
    clustering = np.divide(2.0 * triangles, pairs, out=np.zeros(g.n), where=pairs > 0)
    roots = _component_roots(g.indptr, g.indices)
    return {
        "nodes": g.n,
        "edges": g.num_edges,
        "mean_degree": float(degree.mean()) if g.n else 0.0,
        "std_degree": float(degree.std()) if g.n else 0.0,
        "min_degree": int(degree.min()) if g.n else 0,
        "max_degree": int(degree.max()) if g.n else 0,
        "average_clustering": float(clustering.mean()) if g.n else 0.0,
        "num_components": int(np.count_nonzero(roots == np.arange(g.n))),
        "largest_component_fraction": float(np.bincount(roots).max() / g.n) if g.n else 0.0,
    }


# ---- neighbour kernels ----------------------------------------------------------------------------------------


def neighbor_mean(indptr: IntArray, indices: IntArray, values: FloatArray, default: FloatArray) -> FloatArray:
    """Mean of `values` over each node's neighbours (summed in CSR order), `default[i]` for isolated nodes."""
    return neighbor_mean_of(indptr, indices, values, default, np.arange(indptr.size - 1, dtype=np.int64))


@numba.njit(cache=True, nogil=True)
def neighbor_mean_at(indptr: IntArray, indices: IntArray, values: FloatArray, isolated: float, i: int) -> float:
    """Mean of `values` over node `i`'s neighbours, summed sequentially in CSR order; `isolated` if it has none.

    Neighbour ids are valid node ids, so they index unsigned, which spares numba's negative-index wraparound.
    """
    lo, hi = indptr[i], indptr[i + 1]
    if hi == lo:
        return isolated
    total = 0.0
    for p in range(lo, hi):
        total += values[np.uint64(indices[p])]
    return total / (hi - lo)


@numba.njit(cache=True, parallel=True, nogil=True)
def neighbor_mean_of(
    indptr: IntArray, indices: IntArray, values: FloatArray, default: FloatArray, rows: IntArray
) -> FloatArray:
    """`neighbor_mean` for the nodes in `rows` only (output aligned with `rows`); nodes in parallel."""
    out = np.empty(rows.size, dtype=np.float64)
    for r in numba.prange(rows.size):
        i = rows[r]
        out[r] = neighbor_mean_at(indptr, indices, values, default[i], i)
    return out


def best_neighbor(indptr: IntArray, indices: IntArray, score: FloatArray) -> IntArray:
    """Each node's highest-scoring neighbour (ties to the lowest index), -1 for isolated nodes."""
    return best_neighbor_of(indptr, indices, score, np.arange(indptr.size - 1, dtype=np.int64))


@numba.njit(cache=True, parallel=True, nogil=True)
def best_neighbor_of(indptr: IntArray, indices: IntArray, score: FloatArray, rows: IntArray) -> IntArray:
    """`best_neighbor` for the nodes in `rows` only (output aligned with `rows`); nodes in parallel.

    A node starts from its first neighbour and takes a later one only on a strictly higher score, in CSR order.
    Neighbour ids index unsigned, as in `neighbor_mean_at`.
    """
    out = np.empty(rows.size, dtype=np.int64)
    for r in numba.prange(rows.size):
        i = rows[r]
        lo, hi = indptr[i], indptr[i + 1]
        best = -1
        if hi > lo:
            best = indices[lo]
            top = score[np.uint64(best)]  # the running best score, kept rather than re-read; unsigned as above
            for p in range(lo + 1, hi):
                j = indices[p]
                s = score[np.uint64(j)]
                if s > top:
                    best = j
                    top = s
        out[r] = best
    return out
