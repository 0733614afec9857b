"""Tests of the social graph: CSR invariants, builders against networkx, files, statistics and kernels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from society.world import graph as graphs
from society.world.graph import SocialGraph, graph_stats
from tests.society import references as ref

Builder = Callable[[np.random.Generator], SocialGraph]

SEEDED_BUILDERS: dict[str, Builder] = {
    "watts_strogatz": lambda rng: graphs.watts_strogatz(300, 6, 0.3, rng),
    "watts_strogatz_full_rewire": lambda rng: graphs.watts_strogatz(200, 8, 1.0, rng),
    "watts_strogatz_dense": lambda rng: graphs.watts_strogatz(12, 10, 0.7, rng),
    "barabasi_albert": lambda rng: graphs.barabasi_albert(400, 3, rng),
    "erdos_renyi": lambda rng: graphs.erdos_renyi(400, 0.02, rng),
    "erdos_renyi_dense": lambda rng: graphs.erdos_renyi(40, 0.8, rng),
    "stochastic_block": lambda rng: graphs.stochastic_block([100, 60, 80], 0.1, 0.01, rng),
    "stochastic_block_dense": lambda rng: graphs.stochastic_block([15, 10], 0.9, 0.6, rng),
}

FIXED_BUILDERS: dict[str, Callable[[], SocialGraph]] = {
    "complete": lambda: graphs.complete(30),
    "ring": lambda: graphs.ring(50, 4),
    "grid": lambda: graphs.grid(7, 9, False),
    "grid_periodic": lambda: graphs.grid(7, 9, True),
    "grid_thin_periodic": lambda: graphs.grid(2, 1, True),
}


def assert_valid_csr(g: SocialGraph) -> None:
    """Symmetric, sorted, in range, without self-loops or duplicates."""
    assert g.indptr.dtype == np.int64 and g.indices.dtype == np.int64
    assert g.indptr.shape == (g.n + 1,) and g.indptr[0] == 0 and g.indptr[-1] == g.indices.size
    assert np.all(np.diff(g.indptr) >= 0)
    assert g.indices.size == 0 or (g.indices.min() >= 0 and g.indices.max() < g.n)
    rows = np.repeat(np.arange(g.n), g.degrees)
    assert not np.any(rows == g.indices), "self-loop"
    same_row = rows[1:] == rows[:-1]
    assert np.all(g.indices[1:][same_row] > g.indices[:-1][same_row]), "unsorted or duplicate neighbours"
    forward = np.sort(rows * g.n + g.indices)
    backward = np.sort(g.indices * g.n + rows)
    assert np.array_equal(forward, backward), "asymmetric"
    u, v = g.edges()
    assert u.size == g.num_edges and np.all(u < v)
    if g.blocks is not None:
        assert g.blocks.shape == (g.n,) and g.blocks.dtype == np.int64


def edge_set(g: SocialGraph) -> set[tuple[int, int]]:
    u, v = g.edges()
    return set(zip(u.tolist(), v.tolist()))


def nx_edge_set(graph: nx.Graph) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for a, b in graph.edges()}


# ---- invariants and reproducibility ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEEDED_BUILDERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeded_builders_give_valid_csr(name: str, seed: int) -> None:
    assert_valid_csr(SEEDED_BUILDERS[name](np.random.default_rng(seed)))


@pytest.mark.parametrize("name", FIXED_BUILDERS)
def test_fixed_builders_give_valid_csr(name: str) -> None:
    assert_valid_csr(FIXED_BUILDERS[name]())


@pytest.mark.parametrize("name", SEEDED_BUILDERS)
def test_same_seed_same_graph_other_seed_other_graph(name: str) -> None:
    build = SEEDED_BUILDERS[name]
    a, b, c = (build(np.random.default_rng(seed)) for seed in (5, 5, 6))
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert not (np.array_equal(a.indptr, c.indptr) and np.array_equal(a.indices, c.indices))


def test_builders_leave_the_global_rng_alone() -> None:
    np.random.seed(3)
    expected = np.random.random()
    np.random.seed(3)
    for build in SEEDED_BUILDERS.values():
        build(np.random.default_rng(0))
    assert np.random.random() == expected


def test_from_edges_symmetrises_and_drops_loops_and_duplicates() -> None:
    g = SocialGraph.from_edges(5, [0, 1, 3, 3, 2, 4, 0], [1, 0, 3, 1, 0, 1, 2], blocks=[0, 0, 1, 1, 1])
    assert_valid_csr(g)
    assert edge_set(g) == {(0, 1), (1, 3), (0, 2), (1, 4)}
    assert g.neighbors(1).tolist() == [0, 3, 4]
    assert g.degrees.tolist() == [2, 3, 1, 1, 1]
    assert g.blocks is not None and g.blocks.tolist() == [0, 0, 1, 1, 1]


def test_from_edges_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="0..2"):
        SocialGraph.from_edges(3, [0, 3], [1, 1])
    with pytest.raises(ValueError, match="equal length"):
        SocialGraph.from_edges(3, [0, 1], [1])
    with pytest.raises(ValueError, match="blocks"):
        SocialGraph.from_edges(3, [0], [1], blocks=[0, 1])


def test_to_networkx_keeps_isolated_nodes_and_blocks() -> None:
    g = SocialGraph.from_edges(6, [0, 2], [1, 3], blocks=[0, 0, 1, 1, 2, 2])
    graph = g.to_networkx()
    assert sorted(graph.nodes) == list(range(6))
    assert nx_edge_set(graph) == {(0, 1), (2, 3)}
    assert [graph.nodes[i]["block"] for i in range(6)] == [0, 0, 1, 1, 2, 2]


def test_empty_graph() -> None:
    g = SocialGraph.from_edges(0, [], [])
    assert_valid_csr(g)
    assert graph_stats(g)["nodes"] == 0 and graph_stats(g)["num_components"] == 0


# ---- builders against networkx --------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k"), [(20, 4), (101, 10), (7, 6)])
def test_unrewired_watts_strogatz_and_ring_equal_networkx_lattice(n: int, k: int) -> None:
    lattice = nx.watts_strogatz_graph(n, k, 0.0, seed=0)
    ws = graphs.watts_strogatz(n, k, 0.0, np.random.default_rng(0))
    assert edge_set(ws) == nx_edge_set(lattice) == edge_set(graphs.ring(n, k))
    assert graph_stats(ws)["average_clustering"] == pytest.approx(nx.average_clustering(lattice), abs=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
def test_watts_strogatz_keeps_every_edge(p: float) -> None:
    n, k = 500, 8
    g = graphs.watts_strogatz(n, k, p, np.random.default_rng(1))
    stats = graph_stats(g)
    assert stats["edges"] == n * k // 2 and stats["mean_degree"] == k
    assert stats["min_degree"] >= k // 2  # a node keeps the lattice edges it owns
    reference = nx.watts_strogatz_graph(n, k, p, seed=1)
    expected = nx.average_clustering(reference)
    assert stats["average_clustering"] == pytest.approx(expected, abs=0.05)
    assert np.std(g.degrees) == pytest.approx(np.std([d for _, d in reference.degree()]), abs=0.5)


def test_barabasi_albert_matches_networkx() -> None:
    n, m = 2000, 4
    ours = [graphs.barabasi_albert(n, m, np.random.default_rng(seed)) for seed in range(3)]
    theirs = [nx.barabasi_albert_graph(n, m, seed=seed) for seed in range(3)]
    for g, reference in zip(ours, theirs):
        assert g.num_edges == reference.number_of_edges() == m * (n - m)
        assert g.degrees.min() == m
    our_max = np.mean([g.degrees.max() for g in ours])
    their_max = np.mean([max(d for _, d in r.degree()) for r in theirs])
    assert 0.5 < our_max / their_max < 2.0
    our_low = np.mean([np.mean(g.degrees == m) for g in ours])
    their_low = np.mean([np.mean([d == m for _, d in r.degree()]) for r in theirs])
    assert our_low == pytest.approx(their_low, abs=0.05)


def test_erdos_renyi_degrees() -> None:
    n, p = 3000, 0.004
    space = n * (n - 1) / 2
    for seed in range(3):
        g = graphs.erdos_renyi(n, p, np.random.default_rng(seed))
        assert abs(g.num_edges - space * p) < 5 * np.sqrt(space * p * (1 - p))
        assert g.degrees.mean() == pytest.approx(p * (n - 1), rel=0.05)
    reference = nx.fast_gnp_random_graph(n, p, seed=0)
    assert np.std(g.degrees) == pytest.approx(np.std([d for _, d in reference.degree()]), rel=0.15)


def test_erdos_renyi_extremes() -> None:
    rng = np.random.default_rng(0)
    assert graphs.erdos_renyi(50, 0.0, rng).num_edges == 0
    assert edge_set(graphs.erdos_renyi(30, 1.0, rng)) == edge_set(graphs.complete(30))
    assert graphs.erdos_renyi(1, 0.5, rng).n == 1


def test_stochastic_block_densities() -> None:
    sizes, p_in, p_out = [300, 200, 250], 0.08, 0.01
    g = graphs.stochastic_block(sizes, p_in, p_out, np.random.default_rng(3))
    assert g.blocks is not None and g.blocks.tolist() == [0] * 300 + [1] * 200 + [2] * 250
    u, v = g.edges()
    same = g.blocks[u] == g.blocks[v]
    inside = sum(s * (s - 1) // 2 for s in sizes)
    across = (sum(sizes) ** 2 - sum(s * s for s in sizes)) // 2
    assert abs(same.sum() - inside * p_in) < 5 * np.sqrt(inside * p_in)
    assert abs((~same).sum() - across * p_out) < 5 * np.sqrt(across * p_out)
    for a in range(3):
        for b in range(a + 1, 3):
            pairs = ((g.blocks[u] == a) & (g.blocks[v] == b)).sum()
            assert abs(pairs - sizes[a] * sizes[b] * p_out) < 5 * np.sqrt(sizes[a] * sizes[b] * p_out)
    reference = nx.stochastic_block_model(sizes, [[p_in if a == b else p_out for b in range(3)] for a in range(3)],
                                          seed=3)
    assert g.num_edges == pytest.approx(reference.number_of_edges(), rel=0.1)


def test_stochastic_block_extremes() -> None:
    g = graphs.stochastic_block([5, 0, 4], 1.0, 0.0, np.random.default_rng(0))
    assert g.blocks is not None and g.blocks.tolist() == [0] * 5 + [2] * 4
    assert g.num_edges == 10 + 6 and graph_stats(g)["num_components"] == 2
    full = graphs.stochastic_block([5, 4], 1.0, 1.0, np.random.default_rng(0))
    assert edge_set(full) == edge_set(graphs.complete(9))


def test_complete_and_grid_equal_networkx() -> None:
    assert edge_set(graphs.complete(12)) == nx_edge_set(nx.complete_graph(12))
    for rows, cols in [(4, 6), (3, 3), (2, 5), (1, 4)]:
        for periodic in (False, True):
            reference = nx.convert_node_labels_to_integers(
                nx.grid_2d_graph(rows, cols, periodic=periodic), ordering="sorted"
            )
            assert edge_set(graphs.grid(rows, cols, periodic)) == nx_edge_set(reference)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda rng: graphs.watts_strogatz(10, 3, 0.1, rng), "even k"),
        (lambda rng: graphs.watts_strogatz(10, 10, 0.1, rng), "even k"),
        (lambda rng: graphs.watts_strogatz(10, 4, 1.5, rng), "p in"),
        (lambda rng: graphs.ring(10, 12), "even k"),
        (lambda rng: graphs.barabasi_albert(10, 10, rng), "1 <= m < n"),
        (lambda rng: graphs.barabasi_albert(10, 0, rng), "1 <= m < n"),
        (lambda rng: graphs.erdos_renyi(10, -0.1, rng), "p in"),
        (lambda rng: graphs.erdos_renyi(-1, 0.1, rng), "n >= 0"),
        (lambda rng: graphs.stochastic_block([], 0.1, 0.1, rng), "non-empty"),
        (lambda rng: graphs.stochastic_block([3, -1], 0.1, 0.1, rng), "non-empty"),
        (lambda rng: graphs.stochastic_block([3, 3], 0.1, 2.0, rng), "p_out"),
        (lambda rng: graphs.grid(0, 3, True), "rows >= 1"),
    ],
)
def test_bad_parameters(build: Builder, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(np.random.default_rng(0))


# ---- files ----------------------------------------------------------------------------------------------------


def test_edgelist_round_trip(tmp_path: Path) -> None:
    reference = nx.gnm_random_graph(40, 90, seed=2)
    reference.add_node(45)  # an isolated node past the last id in the file
    path = tmp_path / "graph.edges"
    nx.write_edgelist(reference, path, data=False)
    path.write_text("# a comment line\n\n" + path.read_text() + "3 3  # a self-loop, dropped\n")
    g = graphs.from_edgelist(path, 46)
    assert_valid_csr(g)
    assert g.n == 46 and edge_set(g) == nx_edge_set(reference)
    inferred = graphs.from_edgelist(path)
    assert inferred.n == max(max(e) for e in reference.edges()) + 1
    assert edge_set(inferred) == nx_edge_set(reference)


@pytest.mark.parametrize(
    ("line", "n", "message"),
    [("1 x", None, "two integer"), ("1 2 3", None, "two integer"), ("4", None, "two integer"),
     ("1 -2", None, "0..n-1"), ("1 9", 5, r"0..n-1 \(n=5\)")],
)
def test_bad_edgelist_line_names_file_and_line(tmp_path: Path, line: str, n: int | None, message: str) -> None:
    path = tmp_path / "bad.edges"
    path.write_text(f"# header\n0 1\n{line}\n2 3\n")
    with pytest.raises(ValueError, match=message) as info:
        graphs.from_edgelist(path, n)
    assert str(path) in str(info.value) and "line 3" in str(info.value)


def test_graphml_round_trip_with_blocks(tmp_path: Path) -> None:
    g = graphs.stochastic_block([8, 7], 0.5, 0.1, np.random.default_rng(4))
    path = tmp_path / "graph.graphml"
    nx.write_graphml(g.to_networkx(), path)  # ids 0..14: "10" must sort after "9"
    back = graphs.from_graphml(path)
    assert_valid_csr(back)
    assert np.array_equal(back.indptr, g.indptr) and np.array_equal(back.indices, g.indices)
    assert back.blocks is not None and g.blocks is not None and np.array_equal(back.blocks, g.blocks)


def test_graphml_string_ids_and_faction(tmp_path: Path) -> None:
    reference = nx.Graph()
    reference.add_nodes_from([("carol", {"faction": 1}), ("alice", {"faction": 0}), ("bob", {"faction": 1})])
    reference.add_nodes_from([("dave", {"faction": 2})])
    reference.add_edges_from([("alice", "carol"), ("bob", "carol")])
    path = tmp_path / "named.graphml"
    nx.write_graphml(reference, path)
    g = graphs.from_graphml(path)
    assert g.n == 4 and edge_set(g) == {(0, 2), (1, 2)}
    assert g.blocks is not None and g.blocks.tolist() == [0, 1, 1, 2]


def test_graphml_without_blocks_and_with_bad_blocks(tmp_path: Path) -> None:
    path = tmp_path / "plain.graphml"
    nx.write_graphml(nx.path_graph(5), path)
    assert graphs.from_graphml(path).blocks is None
    bad = nx.path_graph(3)
    nx.set_node_attributes(bad, {0: "north", 1: "south", 2: "north"}, "block")
    nx.write_graphml(bad, path)
    with pytest.raises(ValueError, match="'block'"):
        graphs.from_graphml(path)


# ---- statistics -----------------------------------------------------------------------------------------------


def small_random_graphs() -> list[SocialGraph]:
    rng = np.random.default_rng(9)
    out = [
        graphs.erdos_renyi(200, 0.01, rng),  # many components and isolated nodes
        graphs.erdos_renyi(60, 0.3, rng),
        graphs.barabasi_albert(300, 2, rng),  # hubs
        graphs.watts_strogatz(150, 6, 0.2, rng),
        graphs.stochastic_block([20, 30, 25], 0.3, 0.0, rng),  # at least three components
        graphs.grid(5, 5, True),
        graphs.complete(8),
        SocialGraph.from_edges(4, [], []),
    ]
    return out


def test_graph_stats_equal_networkx() -> None:
    for g in small_random_graphs():
        reference = g.to_networkx()
        stats = graph_stats(g)
        degrees = np.array([d for _, d in reference.degree()])
        components = list(nx.connected_components(reference))
        assert stats["nodes"] == reference.number_of_nodes()
        assert stats["edges"] == reference.number_of_edges()
        assert stats["mean_degree"] == pytest.approx(degrees.mean())
        assert stats["std_degree"] == pytest.approx(degrees.std())
        assert (stats["min_degree"], stats["max_degree"]) == (degrees.min(), degrees.max())
        assert stats["average_clustering"] == pytest.approx(nx.average_clustering(reference), abs=1e-12)
        assert stats["num_components"] == len(components)
        assert stats["largest_component_fraction"] == pytest.approx(max(map(len, components)) / g.n)
        assert all(type(value) in (int, float) for value in stats.values())


# ---- kernels --------------------------------------------------------------------------------------------------


def test_kernels_equal_references() -> None:
    rng = np.random.default_rng(12)
    for g in small_random_graphs():
        values = rng.normal(size=g.n)
        default = rng.random(g.n)
        expected = ref.neighbor_mean_reference(g.indptr, g.indices, values, default)
        assert np.array_equal(graphs.neighbor_mean(g.indptr, g.indices, values, default), expected)
        for score in (rng.random(g.n), rng.integers(0, 3, g.n).astype(np.float64)):  # the second has many ties
            expected_best = ref.best_neighbor_reference(g.indptr, g.indices, score)
            assert np.array_equal(graphs.best_neighbor(g.indptr, g.indices, score), expected_best)


def test_kernels_equal_references_on_larger_graphs() -> None:
    """Enough nodes that the parallel kernels split the work into several chunks."""
    rng = np.random.default_rng(13)
    for g in (graphs.barabasi_albert(20_000, 3, rng), graphs.erdos_renyi(20_000, 1.5e-4, rng)):  # hubs; isolated
        values = rng.normal(size=g.n)
        default = rng.random(g.n)
        expected = ref.neighbor_mean_reference(g.indptr, g.indices, values, default)
        assert np.array_equal(graphs.neighbor_mean(g.indptr, g.indices, values, default), expected)
        for score in (rng.random(g.n), rng.integers(0, 3, g.n).astype(np.float64)):
            expected_best = ref.best_neighbor_reference(g.indptr, g.indices, score)
            assert np.array_equal(graphs.best_neighbor(g.indptr, g.indices, score), expected_best)


def test_kernels_on_a_tiny_graph() -> None:
    g = SocialGraph.from_edges(4, [0, 0, 1], [1, 2, 2])  # node 3 is isolated
    mean = graphs.neighbor_mean(g.indptr, g.indices, np.array([1.0, 2.0, 6.0, 9.0]), np.full(4, -5.0))
    assert mean.tolist() == [4.0, 3.5, 1.5, -5.0]
    best = graphs.best_neighbor(g.indptr, g.indices, np.array([3.0, 3.0, 3.0, 9.0]))
    assert best.tolist() == [1, 0, 0, -1]
