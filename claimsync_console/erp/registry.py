"""Adapter discovery through the ``claimsync.erp_adapters`` entry-point group.

Third-party ERPs ship as separate distributions that declare an entry point; nothing here
names them. A plugin that fails to import must not take the console down with it: it is
skipped with a warning (``warnings.warn`` for tests and interactive use, the log for services)
and every other adapter stays usable.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points

from claimsync_console.erp.base import AdapterCapabilities, AdapterOption, ErpAdapter

ENTRY_POINT_GROUP = "claimsync.erp_adapters"

logger = logging.getLogger(__name__)


class UnknownAdapterError(LookupError):
    """No installed adapter has that name."""


class BrokenAdapterWarning(RuntimeWarning):
    """An adapter's entry point could not be loaded; the adapter is skipped."""


def available_adapters() -> dict[str, type[ErpAdapter]]:
    """Every loadable adapter by entry-point name. Not cached: installing a plugin (or a test
    putting one on ``sys.path``) shows up on the next call, and the scan costs milliseconds."""
    found: dict[str, type[ErpAdapter]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            _skip(point, f"duplicate name, keeping {found[point.name].__module__}")
            continue
        adapter = _load(point)
        if adapter is not None:
            found[point.name] = adapter
    return dict(sorted(found.items()))


def create_adapter(name: str, options: Mapping[str, object] | None = None) -> ErpAdapter:
    """Construct the named adapter from a mapping of option values (validated by the adapter)."""
    adapters = available_adapters()
    try:
        adapter_class = adapters[name]
    except KeyError:
        known = ", ".join(adapters) or "none"
        raise UnknownAdapterError(f"no ERP adapter named {name!r}; installed: {known}") from None
    return adapter_class(options or {})


def _load(point: EntryPoint) -> type[ErpAdapter] | None:
    try:
        loaded = point.load()
    except Exception as exc:  # a plugin's import can fail in any way; none may crash us
        _skip(point, f"{type(exc).__name__}: {exc}")
        return None
    if not (isinstance(loaded, type) and issubclass(loaded, ErpAdapter)):
        _skip(point, "it is not an ErpAdapter subclass")
        return None
    if getattr(loaded, "__abstractmethods__", None):
        _skip(point, f"abstract methods left: {', '.join(sorted(loaded.__abstractmethods__))}")
        return None
    declared = getattr(loaded, "options", None)
    if not isinstance(declared, tuple) or not all(isinstance(o, AdapterOption) for o in declared):
        _skip(point, "its options are not a tuple of AdapterOption")
        return None
    if not isinstance(getattr(loaded, "capabilities", None), AdapterCapabilities):
        _skip(point, "its capabilities are not an AdapterCapabilities")
        return None
    return loaded


def _skip(point: EntryPoint, why: str) -> None:
    message = f"ERP adapter {point.name!r} ({point.value}) skipped: {why}"
    logger.warning(message)
    warnings.warn(message, BrokenAdapterWarning, stacklevel=3)
