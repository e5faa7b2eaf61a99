"""The one registry pattern: ``register_*`` / ``create_*`` / ``list_*``, as timm and open_clip do.

A :class:`Registry` maps a name to a factory (a class or a function) plus optional metadata. Each
kind of pluggable component (sampling strategies, encoders, heads, scorers, losses, sources,
HNeRV kinds, ...) owns one registry and exposes three module-level names::

    HEADS = Registry("head")
    register_head = HEADS.register      # decorator: @register_head("mean")
    create_head = HEADS.create          # create_head("mean", dim=256)
    list_heads = HEADS.names            # ["attention", "mean", ...]

An unknown name raises :class:`UnknownNameError` (a ``KeyError`` and a ``ValueError``) naming the
kind and the registered names, so a typo in a profile reads as a sentence, not a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T", bound=Callable[..., Any])


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory and the metadata given at registration."""

    name: str
    factory: T
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Named factories of one kind, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, replace: bool = False, **meta: Any) -> Callable[[T], T]:
        """Decorator registering ``factory`` under ``name``; ``meta`` is kept for :meth:`entry`.

        Registering a taken name is an error unless ``replace=True`` (tests and notebooks that
        redefine a component on purpose).
        """

        def decorator(factory: T) -> T:
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, factory, dict(meta))
            return factory

        return decorator

    def add(self, name: str, factory: T, *, replace: bool = False, **meta: Any) -> T:
        """Register without decorator syntax (for factories defined elsewhere)."""
        return self.register(name, replace=replace, **meta)(factory)

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``, or :class:`UnknownNameError` naming the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none registered"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; choose one of: {known}") from None

    def get(self, name: str) -> T:
        """The factory registered under ``name``."""
        return self.entry(name).factory

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the factory registered under ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests use it to clean up what they registered)."""
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
