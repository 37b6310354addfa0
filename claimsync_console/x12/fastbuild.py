"""Fast constructors for the frozen, slotted domain dataclasses on the 835 hot path.

A frozen dataclass's ``__init__`` calls ``object.__setattr__`` once per field; for a
26-field ``ClaimPayment`` that was a fifth of the time spent building it
(benchmarks/bench_parse.py). The reader instead fills an unfrozen twin with the same slots,
whose attribute stores are plain slot writes, and then re-labels it as the domain class.
The result is indistinguishable from ``cls(...)``: same type, same slots, so equality,
hashing and immutability are the domain class's own. ``__class__`` assignment refuses any
layout difference, so a drifted twin fails loudly instead of yielding wrong objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any


def fast_constructor(cls: type) -> Callable[..., Any]:
    """A function taking ``cls``'s fields positionally (defaults as declared) and returning a
    ``cls`` instance, without the per-field ``object.__setattr__`` of the frozen ``__init__``."""
    names = [f.name for f in fields(cls)]
    slots = tuple(getattr(cls, "__slots__", ()))
    if tuple(names) != slots:
        raise TypeError(f"{cls.__name__}: fast construction needs slots in field order")
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": slots})
    namespace: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    params = []
    for field in fields(cls):
        if field.default is not MISSING:
            namespace[f"_d_{field.name}"] = field.default
            params.append(f"{field.name}=_d_{field.name}")
        else:
            params.append(field.name)
    body = "".join(f"    o.{name} = {name}\n" for name in names)
    source = (
        f"def make_{cls.__name__}({', '.join(params)}):\n"
        "    o = _new(_twin)\n" + body + "    o.__class__ = _cls\n    return o\n"
    )
    exec(source, namespace)  # generated from the dataclass's own field names only
    make: Callable[..., Any] = namespace[f"make_{cls.__name__}"]
    probe_args = [None] * len(names)
    probe = make(*probe_args)
    if type(probe) is not cls or probe != cls(*probe_args):
        raise TypeError(f"{cls.__name__}: fast construction does not match the class")
    return make
