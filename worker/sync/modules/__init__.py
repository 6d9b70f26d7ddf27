"""The module registry: one ``ModuleSpec`` per portal module, each declared as ``SPEC``
in its own file here, in the order of ``schemas.Module`` (the order a pull reads and
a batch applies them: dependencies first).

Everything keyed by module (apply, the pull, status, the sync history) looks its
spec up here. The spec files are found, not listed, so declaring a module is
adding its file; ``registered`` adds a spec for a while (a test's throwaway module).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager

from schemas import Module
from worker.sync.modules.spec import PROJECT_RELATION, ModuleSpec, Related, Writer

__all__ = [
    "MODULES",
    "PROJECT_RELATION",
    "ModuleSpec",
    "Related",
    "Writer",
    "registered",
    "spec_for",
]


def _declared() -> dict[Module, ModuleSpec]:
    """The ``SPEC`` of every file of this package, in the order of ``Module``."""
    found: dict[Module, ModuleSpec] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "spec":
            continue
        spec = importlib.import_module(f"{__name__}.{info.name}").SPEC
        if not isinstance(spec, ModuleSpec):
            raise TypeError(f"{__name__}.{info.name}.SPEC is not a ModuleSpec")
        if spec.module in found:
            raise ValueError(f"module {spec.module.value!r} is declared twice")
        found[spec.module] = spec
    undeclared = [m.value for m in Module if m not in found]
    if undeclared:
        raise LookupError(f"no spec declares module {', '.join(undeclared)}")
    return {m: found[m] for m in Module}


MODULES: dict[Module, ModuleSpec] = _declared()


def spec_for(module: Module) -> ModuleSpec:
    """The spec of ``module`` (KeyError for a module nobody declared)."""
    return MODULES[module]


@contextmanager
def registered(spec: ModuleSpec) -> Iterator[ModuleSpec]:
    """``spec`` in the registry, after every module, until the block ends.

    Its dependencies must be registered already, so the order stays dependencies first.
    """
    if spec.module in MODULES:
        raise ValueError(f"module {spec.module.value!r} is registered already")
    missing = [d.value for d in spec.dependencies if d not in MODULES]
    if missing:
        raise ValueError(f"{spec.module.value} depends on unregistered {', '.join(missing)}")
    MODULES[spec.module] = spec
    try:
        yield spec
    finally:
        del MODULES[spec.module]
