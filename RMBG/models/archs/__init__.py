"""The architecture registry: one module per family, each listing its :class:`ArchSpec` s.

``REGISTRY`` maps every architecture name to its spec. It is filled from the
modules of this package (each one's ``SPECS`` tuple), so adding an
architecture is adding one file here; :func:`register` adds one from
anywhere else (a notebook, a test). :func:`get_spec` also accepts the older
names a spec lists as aliases.

- ``u2net``: U-2-Net and U-2-Net-P (Qin et al. 2020), the reference's tables.
- ``isnet``: IS-Net (Qin et al. 2022, DIS), U-2-Net's stages behind a stride-2 stem.
- ``resnet_unet``: the original project's ResNet50 U-Net (old name ``seed``).
- ``refine_head``: a trainable refinement head on a frozen U-2-Net.
"""

from __future__ import annotations

import importlib
import pkgutil

from RMBG.models.archs.spec import SIZE_MULTIPLE, ArchSpec, check_input_size

__all__ = ["REGISTRY", "ArchSpec", "SIZE_MULTIPLE", "arch_names", "canonical_name", "check_input_size",
           "get_spec", "register", "unregister"]

#: name -> spec, in the order the modules list them.
REGISTRY: dict[str, ArchSpec] = {}
#: older name -> current name.
ALIASES: dict[str, str] = {}


def register(spec: ArchSpec, replace: bool = False) -> ArchSpec:
    """Add ``spec`` to :data:`REGISTRY` (``replace`` to swap a spec of the same name)."""
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"expected an ArchSpec, not {type(spec).__name__}")
    for name in (spec.name, *spec.aliases):
        owner = name if name in REGISTRY else ALIASES.get(name)
        if owner is not None and not (replace and owner == spec.name):
            raise ValueError(f"architecture name {name!r} is already registered (by {owner!r})")
    REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        ALIASES[alias] = spec.name
    return spec


def unregister(name: str) -> None:
    """Remove an architecture (and its aliases) from the registry."""
    spec = REGISTRY.pop(canonical_name(name))
    for alias in spec.aliases:
        ALIASES.pop(alias, None)


def canonical_name(arch: str) -> str:
    """The registered name of ``arch`` (an alias is mapped to it), else a ValueError."""
    if arch in REGISTRY:
        return arch
    if arch in ALIASES:
        return ALIASES[arch]
    raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(arch_names())}")


def get_spec(arch: str) -> ArchSpec:
    """The spec of ``arch`` (a registered name or alias)."""
    return REGISTRY[canonical_name(arch)]


def arch_names(aliases: bool = False) -> list[str]:
    """Registered architecture names (with ``aliases``, the accepted older names too)."""
    return list(REGISTRY) + (list(ALIASES) if aliases else [])


def _discover() -> None:
    """Register the ``SPECS`` of every module of this package, in their ``ORDER`` (then name)."""
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if info.name != "spec"
    ]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        for spec in getattr(module, "SPECS", ()):
            register(spec)


_discover()
