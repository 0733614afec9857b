"""Turning a scenario's population, graph and commons sections into arrays."""

from __future__ import annotations

import numpy as np

from society.scenario.files import Problem, ScenarioError
from society.scenario.schema import (
    BarabasiAlbertGraph,
    CompleteGraph,
    EdgeListGraph,
    ErdosRenyiGraph,
    GraphMLGraph,
    GraphSpec,
    GridGraph,
    Population,
    RingGraph,
    StochasticBlockGraph,
    WattsStrogatzGraph,
)
from society.world import graph as graphs
from society.world.graph import SocialGraph


def build_graph(spec: GraphSpec, n: int, rng: np.random.Generator) -> SocialGraph:
    """The social graph a scenario asks for, over citizens 0..n-1."""
    match spec:
        case WattsStrogatzGraph(k=k, p=p):
            return graphs.watts_strogatz(n, k, p, rng)
        case BarabasiAlbertGraph(m=m):
            return graphs.barabasi_albert(n, m, rng)
        case ErdosRenyiGraph(mean_degree=mean_degree):
            return graphs.erdos_renyi(n, min(1.0, mean_degree / max(n - 1, 1)), rng)
        case StochasticBlockGraph(blocks=blocks, p_in=p_in, p_out=p_out):
            sizes = np.full(blocks, n // blocks)
            sizes[: n % blocks] += 1
            return graphs.stochastic_block(sizes.tolist(), p_in, p_out, rng)
        case CompleteGraph():
            return graphs.complete(n)
        case RingGraph(k=k):
            return graphs.ring(n, k)
        case GridGraph(rows=rows, periodic=periodic):
            return graphs.grid(rows, n // rows, periodic)
        case EdgeListGraph() | GraphMLGraph():
            return _graph_from_file(spec, n)
    raise TypeError(f"unknown graph spec {spec!r}")


def _graph_from_file(spec: EdgeListGraph | GraphMLGraph, n: int) -> SocialGraph:
    """Load a graph file, turning a bad file into a scenario problem that names it."""
    try:
        if isinstance(spec, EdgeListGraph):
            graph = graphs.from_edgelist(spec.path, n)
        else:
            graph = graphs.from_graphml(spec.path)
    except (ValueError, OSError) as error:
        raise ScenarioError([Problem(str(spec.path), "graph.path", str(error))]) from None
    if graph.n != n:
        message = f"the graph has {graph.n} nodes but population.size is {n}"
        raise ScenarioError([Problem(str(spec.path), "graph.path", message)])
    return graph


def graph_file_problems(spec: GraphSpec, n: int) -> list[Problem]:
    """What building the graph of a scenario would reject in its graph file (none for generated graphs).

    Reads the file, as building does: `society validate` runs it so that it rejects what `society run` would.
    """
    if not isinstance(spec, EdgeListGraph | GraphMLGraph):
        return []
    try:
        _graph_from_file(spec, n)
    except ScenarioError as error:
        return error.problems
    return []


def group_counts(population: Population) -> np.ndarray:
    """Citizens in each policy group: the fractions of the population size, rounded by largest remainder."""
    n = population.size
    fractions = np.array([spec.fraction for spec in population.policies])
    counts = np.floor(fractions * n).astype(np.int64)
    remainders = fractions * n - counts
    counts[np.argsort(-remainders, kind="stable")[: n - counts.sum()]] += 1
    return counts


def assign_groups(population: Population, rng: np.random.Generator) -> np.ndarray:
    """Policy group of every citizen: exact counts by largest remainder, in a seeded random order."""
    groups = np.repeat(np.arange(len(population.policies), dtype=np.int16), group_counts(population))
    return rng.permutation(groups)


def assign_patches(n: int, patches: int, how: str, rng: np.random.Generator) -> np.ndarray:
    """Patch each citizen harvests from: uniformly at random, or in contiguous blocks of citizens."""
    if how == "block":
        return (np.arange(n, dtype=np.int64) * patches) // n
    return rng.integers(0, patches, n, dtype=np.int64)
