"""``ConfigBuilder``: the fit config a command line becomes, key by dotted key, remembering which
flag set each key so that two flags that disagree are one error naming both."""

from __future__ import annotations

from typing import Any

from autotrain_pl.errors import AutotrainError

#: A value that sets a key to None on purpose (``set`` skips a plain None).
NULL = object()


class ConfigBuilder:
    """A nested dict of the fit config, filled by ``set(dotted_key, value, by=flag)``.

    A guide default (``explicit=False``) gives way to a flag the user typed; two typed flags
    that put different values at one key are an error.
    """

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self._setters: dict[str, tuple[str, bool]] = {}

    def set(self, key: str, value: Any, by: str, explicit: bool = True) -> None:
        if value is None:
            return
        value = None if value is NULL else value
        previous = self._setters.get(key)
        if previous is not None:
            setter, was_explicit = previous
            if was_explicit and not explicit:
                return
            if was_explicit and explicit and self.get(key) != value and setter != by:
                raise AutotrainError(f"{setter} and {by} both set {key} ({self.get(key)!r} and "
                                     f"{value!r}); keep one")
        node = self.config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        self._setters[key] = (by, explicit)

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def setter(self, key: str) -> str | None:
        """The flag that set ``key`` (None: unset)."""
        previous = self._setters.get(key)
        return previous[0] if previous else None

    def keys_set_by(self, by: str) -> list[str]:
        """The keys ``by`` (``--lr``) set, typed or as the guide's default."""
        return [key for key, (setter, _) in self._setters.items() if setter == by]

    def append(self, key: str, item: Any) -> None:
        """Add ``item`` to the list at ``key`` (``trainer.callbacks``)."""
        items = list(self.get(key) or [])
        items.append(item)
        node = self.config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = items
