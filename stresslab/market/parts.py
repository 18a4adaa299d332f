"""``Parts``: the kernel's inputs and state, one entry per mechanism.

``Params``, ``Static``, the market state and the online summary are each a ``Parts``:
a mapping from mechanism name to that mechanism's own piece (``params.book``,
``static.breakers``, ``state.positions``, ``summary.haircuts``), built by keyword from
the mechanism modules listed in ``market/model.py``. It is a JAX pytree (its leaves are
the pieces' arrays, keyed by name) and, when every piece is hashable (``Static``), it
is hashable, so it can be a static argument of ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax


@jax.tree_util.register_pytree_with_keys_class
class Parts(Mapping[str, Any]):
    """Pieces by mechanism name, with attribute access (``parts.book``); immutable."""

    __slots__ = ("_items",)

    def __init__(self, **pieces: Any) -> None:
        object.__setattr__(self, "_items", dict(pieces))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(f"no part {name!r} (parts: {', '.join(self._items)})") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Parts is immutable; use .replace(name=value)")

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Parts) and tuple(self._items.items()) == tuple(other._items.items())

    def __repr__(self) -> str:
        return f"Parts({', '.join(f'{k}={v!r}' for k, v in self._items.items())})"

    def replace(self, **changes: Any) -> Parts:
        """A copy with the named pieces replaced (each must exist)."""
        unknown = set(changes) - set(self._items)
        if unknown:
            raise KeyError(f"no part {sorted(unknown)} (parts: {', '.join(self._items)})")
        return Parts(**{**self._items, **changes})

    def tree_flatten_with_keys(self):
        names = tuple(self._items)
        return [(jax.tree_util.GetAttrKey(k), self._items[k]) for k in names], names

    @classmethod
    def tree_unflatten(cls, names, children):
        return cls(**dict(zip(names, children, strict=True)))
