"""One shape of registry: things selectable by name in a config, or by import path.

Chat formats, losses, metrics, benchmarks and subcommands each keep one ``Registry``::

    CHAT_FORMATS = Registry(
        kind="chat format", field="chat_format", builtin_modules=("autotrain_pl.rendering.chatml",)
    )

    @CHAT_FORMATS.register("chatml")
    class ChatMLRenderer(Renderer): ...

    CHAT_FORMATS.get("ChatML")                       # the registered class
    CHAT_FORMATS.get("my_pkg.formats.MyRenderer")    # imported with import_object, never eval

A name never contains a dot: a dotted string is always an import path.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from autotrain_pl.errors import AutotrainError
from autotrain_pl.importing import import_object

T = TypeVar("T")
E = TypeVar("E")  # what ``register`` decorates; kept as is, so a class stays its own type


def _strip(name: str) -> str:
    return name.strip()


class Registry(Generic[T]):
    """Names to objects (classes, functions, factories), filled by the ``register`` decorator.

    Args:
        kind: What an entry is, for messages (``"chat format"``, ``"loss"``).
        field: The config field that names an entry (``"chat_format"``); errors say
            ``field='value'``, and import paths are imported with ``import_object(path, field)``.
        builtin_modules: Modules imported on the first lookup, so that their ``register``
            decorators have run before ``get``, ``names`` or ``in`` answer.
        normalize: Maps a name to its lookup key (default: strip whitespace); e.g. lowercase it
            for case-insensitive names. ``names()`` still lists names as registered.
        example: An import path shown in the unknown-name error (``my_pkg.formats.MyRenderer``).
        accepts: Optional check of what an import path (or ``register``) yields; ``expects``
            completes the error ``field='path' is not {expects}``.
    """

    def __init__(
        self,
        kind: str,
        field: str,
        builtin_modules: Sequence[str] = (),
        *,
        normalize: Callable[[str], str] = _strip,
        example: str = "my_pkg.module.Name",
        accepts: Callable[[Any], bool] | None = None,
        expects: str = "of the expected type",
    ) -> None:
        self.kind = kind
        self.field = field
        self.builtin_modules = tuple(builtin_modules)
        self.normalize = normalize
        self.example = example
        self.accepts = accepts
        self.expects = expects
        self._entries: dict[str, T] = {}  # lookup key -> entry
        self._names: dict[str, str] = {}  # lookup key -> name as registered
        self._loaded = not self.builtin_modules

    def register(self, name: str, *aliases: str) -> Callable[[E], E]:
        """Decorator that adds an entry under ``name`` and ``aliases``.

        Registering the same object again (or a re-import of its definition) is allowed; a name
        taken by a different object is an error.
        """
        names = [self._check_name(alias) for alias in (name, *aliases)]

        def decorator(entry: E) -> E:
            self._check_entry(entry, names[0])
            for registered in names:
                existing = self._entries.get(self.normalize(registered))
                if existing is not None and _identity(existing) != _identity(entry):
                    raise AutotrainError(
                        f"{self.field} {registered!r} is already registered by "
                        f"{_identity(existing)}; pick another name"
                    )
            for registered in names:
                self._entries[self.normalize(registered)] = entry  # type: ignore[assignment]
                self._names[self.normalize(registered)] = registered
            return entry

        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` (not its aliases); for tests and plugins. Unknown names are ignored."""
        key = self.normalize(name)
        self._entries.pop(key, None)
        self._names.pop(key, None)

    def get(self, name_or_path: str) -> T:
        """The entry registered as ``name_or_path``, or the object that import path names.

        Raises:
            AutotrainError: one line, for an unknown name (listing the known ones), a failed
                import, or an imported object that ``accepts`` rejects.
        """
        if not isinstance(name_or_path, str) or not name_or_path.strip():
            raise AutotrainError(
                f"{self._subject(name_or_path)} must be a non-empty string: a {self.kind} name "
                f"or an import path like {self.example}"
            )
        self._load_builtins()
        key = self.normalize(name_or_path)
        if key in self._entries:
            return self._entries[key]
        path = name_or_path.strip()
        if "." in path:
            entry = import_object(path, self.field)
            self._check_entry(entry, path)
            return entry
        raise AutotrainError(
            f"{self._subject(name_or_path)} is not known; use one of: {', '.join(self.names())}; "
            f"or an import path like {self.example}"
        )

    def names(self) -> list[str]:
        """Sorted names (aliases included), as registered."""
        self._load_builtins()
        return sorted(self._names.values())

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is registered (import paths are not)."""
        if not isinstance(name, str):
            return False
        self._load_builtins()
        return self.normalize(name) in self._entries

    def __repr__(self) -> str:
        return f"Registry(kind={self.kind!r}, field={self.field!r}, names={self.names()})"

    # -- helpers --------------------------------------------------------------------------------
    def _subject(self, name: object) -> str:
        """``chat_format='x'`` when the field has its own name, else ``benchmark 'x'``."""
        return f"{self.kind} {name!r}" if self.field == self.kind else f"{self.field}={name!r}"

    def _check_name(self, name: str) -> str:
        if not isinstance(name, str) or not name.strip() or "." in name:
            raise AutotrainError(
                f"{self.kind} name {name!r} must be non-empty and contain no dot "
                "(a dotted name is an import path)"
            )
        return name.strip()

    def _check_entry(self, entry: Any, name: str) -> None:
        if self.accepts is not None and not self.accepts(entry):
            raise AutotrainError(f"{self.field}={name!r} is not {self.expects}")

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: the modules' decorators call back into us
        try:
            for module in self.builtin_modules:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False
            raise


def _identity(entry: Any) -> str:
    """``module.qualname`` of a class or function, so a re-imported definition counts as equal."""
    module, qualname = getattr(entry, "__module__", None), getattr(entry, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return f"{type(entry).__module__}.{type(entry).__qualname__} object at {id(entry):#x}"
