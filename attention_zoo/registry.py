"""One name registry, shared by the layer factory and the model zoo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Entry:
    """A registered name: what it builds, the defaults it presets, its kind."""

    name: str
    target: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    kind: str = ""


class Registry:
    """Maps names (and aliases with preset arguments) to callables.

    Args:
        what: the noun used in error messages, e.g. ``"layer"``.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: Callable[..., Any], kind: str = "",
            **defaults: Any) -> None:
        key = _normalize(name)
        if key in self._entries:
            raise ValueError(f"{self.what} name {name!r} is already registered")
        self._entries[key] = Entry(key, target, dict(defaults), kind)

    def entry(self, name: str) -> Entry:
        if not isinstance(name, str):
            raise TypeError(
                f"{self.what} name must be a str, received {type(name).__name__}")
        try:
            return self._entries[_normalize(name)]
        except KeyError:
            raise ValueError(
                f"Unknown {self.what} {name!r}. Known names: "
                f"{', '.join(self.names())}") from None

    def create(self, name: str, /, **kwargs: Any) -> Any:
        entry = self.entry(name)
        return entry.target(**{**entry.defaults, **kwargs})

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, e in self._entries.items()
                      if kind is None or e.kind == kind)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize(name) in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[n] for n in self.names())


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")
