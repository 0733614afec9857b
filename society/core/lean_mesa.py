"""Import Mesa without the modules its package loads and a Society never uses, deferred to their first use.

Mesa's package `__init__` imports `mesa.experimental` (SciPy's spatial module), `mesa.space` (networkx) and,
through `mesa.datacollection`, pandas: about 0.4 s of a run's start-up, for code a run never calls. The
`society` command imports Mesa through `import_mesa()`: where Mesa's modules hold those modules (e.g.
`mesa.datacollection.pd`), they hold a stand-in with only its name and file until an attribute it lacks is asked
for, when the real module is imported and the stand-in answers from it. Once Mesa is imported the stand-ins leave
`sys.modules`, so any later import of those modules is an ordinary one. Code that uses them sees no difference
but the moment they load.

A stand-in keeps its `__file__`, because Mesa's own import walks every loaded module asking for it
(`inspect.stack()` in `mesa.model`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import weakref
from collections.abc import Sequence
from types import ModuleType
from typing import Any

DEFERRED = ("mesa.experimental", "mesa.space", "pandas")
"""What Mesa's package import loads and a run never uses."""

IMPORT_ATTRIBUTES = ("__spec__", "__loader__", "__path__", "__file__", "__cached__", "__package__", "__doc__")
"""What the import system sets on a module; a stand-in takes the real module's once it has loaded."""

_armed: weakref.WeakSet[DeferredModule] = weakref.WeakSet()
"""Stand-ins the import system has finished setting up; before that, an attribute they lack is simply missing."""


class DeferredModule(ModuleType):
    """Stands in for a module until an attribute it lacks is asked for; from then on answers from the real one."""

    def __getattr__(self, attribute: str) -> Any:
        if self not in _armed:
            raise AttributeError(attribute)
        return getattr(_real_module(self), attribute)

    def __dir__(self) -> list[str]:
        return dir(_real_module(self))


def _real_module(stand_in: DeferredModule) -> ModuleType:
    """Import the module `stand_in` stands for (an ordinary import: once, other threads waiting) and return it."""
    real = importlib.import_module(stand_in.__name__)
    for attribute in IMPORT_ATTRIBUTES:
        if hasattr(real, attribute):
            setattr(stand_in, attribute, getattr(real, attribute))
    return real


class _DeferringLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return DeferredModule(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        _armed.add(module)


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Answers the first import of each deferred name with a stand-in; any other name, it leaves alone."""

    def __init__(self, names: Sequence[str]) -> None:
        self.pending = set(names)

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name not in self.pending:
            return None
        self.pending.discard(name)
        found = importlib.machinery.PathFinder.find_spec(name, path)
        if found is None or found.origin is None:
            return None
        spec = importlib.machinery.ModuleSpec(
            name, _DeferringLoader(), origin=found.origin, is_package=found.submodule_search_locations is not None
        )
        spec.has_location = True
        return spec


def import_mesa() -> ModuleType:
    """Import Mesa with `DEFERRED` standing in until first used; if Mesa is already imported, just return it."""
    if "mesa" in sys.modules:
        return sys.modules["mesa"]
    finder = _DeferringFinder([name for name in DEFERRED if name not in sys.modules])
    sys.meta_path.insert(0, finder)
    try:
        import mesa
    finally:
        sys.meta_path.remove(finder)
        for name in DEFERRED:
            if isinstance(sys.modules.get(name), DeferredModule):
                del sys.modules[name]
    return mesa
