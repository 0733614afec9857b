"""The run's tree of seeded random generators: one independent stream per named component."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np


class RngTree:
    """Named `numpy.random.Generator` streams spawned from one run seed.

    Each component asks for its stream by name; the stream is derived from the run seed and a stable hash of
    the name (a SeedSequence spawn key), so adding a component never shifts another component's numbers.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._generators: dict[str, np.random.Generator] = {}

    def __call__(self, name: str) -> np.random.Generator:
        """The generator for component `name`, created on first use."""
        generator = self._generators.get(name)
        if generator is None:
            sequence = np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(name.encode()),))
            generator = np.random.Generator(np.random.PCG64(sequence))
            self._generators[name] = generator
        return generator

    def child_seed(self, name: str) -> int:
        """A 64-bit integer seed for libraries that want one (derived like the generators)."""
        sequence = np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(name.encode()),))
        return int(sequence.generate_state(1, np.uint64)[0])

    def state(self) -> dict[str, Any]:
        """Bit-generator states of every stream created so far, for a checkpoint."""
        return {name: g.bit_generator.state for name, g in self._generators.items()}

    def restore(self, state: dict[str, Any]) -> None:
        """Put every stream back to the state a checkpoint recorded."""
        for name, bit_state in state.items():
            self(name).bit_generator.state = bit_state
