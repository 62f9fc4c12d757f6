"""Where rows come from: local files and folders, dataset names, and ``synthetic:`` references.

All reading goes through ``datasets`` (its loaders, cache and fingerprints). This module adds what
a user needs when something is wrong: every loaded dataset carries a :class:`RowLocator` that maps
a row index back to a file and line (JSONL) or row, so errors point at the place to fix.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from autotrain_pl.data.file_lines import (
    check_utf8,
    is_json_array,
    json_array_elements,
    locate_malformed_csv,
    locate_malformed_json,
    where_in_file,
)
from autotrain_pl.data.synthetic import is_synthetic_ref, parse_synthetic_ref, synthetic_rows
from autotrain_pl.data.validation import option_name
from autotrain_pl.errors import AutotrainError

log = logging.getLogger(__name__)

#: File extension -> ``datasets`` packaged builder.
DATA_EXTENSIONS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class FilePart:
    """The rows ``[start, start + count)`` of a loaded source came from ``path``."""

    path: str
    start: int
    count: int


@dataclass(frozen=True)
class RowLocator:
    """Turns a row index into a place a user can open: ``train.jsonl line 7``, ``x.csv row 3``."""

    name: str
    parts: tuple[FilePart, ...] = ()

    def where(self, index: int) -> str:
        for part in self.parts:
            if part.start <= index < part.start + part.count:
                return where_in_file(part.path, index - part.start)
        return f"{self.name} row {index}"


class EmptySourceError(AutotrainError):
    """A file, folder or dataset that holds no rows (an ``AutotrainError``: the user fixes it)."""


#: What a row looks like in each file type, for the "add rows" hint.
_ROW_HINTS = {
    ".jsonl": 'one JSON object per line, e.g. {"messages": [...]}',
    ".json": 'a JSON array of objects, e.g. [{"messages": [...]}]',
    ".csv": "a header line and one line per row",
    ".parquet": "rows",
}
_BLANK = b" \t\r\n\x0b\x0c\xef\xbb\xbf"  # whitespace and a UTF-8 byte-order mark


def _only_blank(path: str) -> bool:
    """Whether a text file holds nothing but whitespace (reads until the first other byte)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if chunk.strip(_BLANK):
                return False
    return True


def _empty_before_reading(path: str, builder: str) -> str | None:
    """Why ``path`` certainly has no rows, found without parsing it; None when it has content."""
    if os.path.getsize(path) == 0:
        return "0 bytes"
    if builder in ("json", "csv") and _only_blank(path):
        return "only blank lines"
    return None


def _empty_after_reading(path: str, builder: str) -> str | None:
    """Why a file with content has no rows (an empty JSON array, a CSV header alone, ...)."""
    try:
        if builder == "json" and is_json_array(path):
            with open(path, encoding="utf-8-sig") as handle:
                return "an empty JSON array" if json.load(handle) == [] else None
        if builder == "csv":
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = [line for line in handle if line.strip()]
            return "only a header line" if len(lines) <= 1 else None
        if builder == "parquet":
            import pyarrow.parquet as pq

            return "0 rows" if pq.read_metadata(path).num_rows == 0 else None
    except (OSError, ValueError, UnicodeDecodeError):  # unreadable for other reasons
        return None
    return None


def _empty_file_error(path: str, reason: str) -> EmptySourceError:
    hint = _ROW_HINTS.get(Path(path).suffix.lower(), "rows")
    return EmptySourceError(f"{path}: the file has no rows ({reason}); add {hint}, or use another file")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass
class LoadedSource:
    """A ``datasets.Dataset`` with the locator for its rows."""

    dataset: datasets.Dataset
    locator: RowLocator
    splits: tuple[str, ...] = field(default_factory=tuple)


def looks_local(ref: str) -> bool:
    """Whether ``ref`` names a local path (as opposed to a dataset name such as ``org/name``)."""
    return (
        os.path.exists(os.path.expanduser(ref))
        or Path(ref).suffix.lower() in DATA_EXTENSIONS
        or ref.startswith((".", "/", "~"))
    )


def check_source_ref(ref: str, field_name: str = "data_path") -> None:
    """Cheap checks that need no reading, so bad configs fail before a model loads."""
    if is_synthetic_ref(ref):
        parse_synthetic_ref(ref)
        return
    path = os.path.expanduser(ref)
    if looks_local(ref) and not os.path.exists(path):
        raise AutotrainError(
            f"{option_name(field_name)}={ref!r} does not exist; give an existing file or folder (jsonl, json, "
            "csv, parquet), a dataset name, or a synthetic:<generator> reference"
        )
    suffix = Path(path).suffix.lower()
    if os.path.isfile(path) and suffix in DATA_EXTENSIONS:  # empty: say so before a model loads
        reason = _empty_before_reading(path, DATA_EXTENSIONS[suffix])
        if reason is not None:
            raise _empty_file_error(path, reason)


def load_source(ref: str, split: str | None = None, subset: str | None = None) -> LoadedSource:
    """Load rows from a file, folder, dataset name or ``synthetic:`` reference.

    Args:
        ref: path, folder, ``datasets`` name, or ``synthetic:name?key=value``.
        split: split of a folder or named dataset (default ``train``); ignored for single files.
        subset: dataset configuration name for ``datasets.load_dataset``.

    Raises:
        EmptySourceError: the source holds no rows (an empty file, a file of blank lines, a
            CSV header alone, a folder whose files are all empty, an empty dataset).
        AutotrainError: any other problem, naming the file and line where there is one.
    """
    if is_synthetic_ref(ref):
        dataset = datasets.Dataset.from_list(synthetic_rows(ref))
        return LoadedSource(dataset, RowLocator(ref))
    check_source_ref(ref)
    path = os.path.expanduser(ref)
    if os.path.isfile(path):
        source = _load_files([path], name=path)
    elif os.path.isdir(path):
        source = _load_folder(path, split)
    else:
        source = _load_named(ref, split, subset)
    if len(source.dataset) == 0:
        raise EmptySourceError(f"{source.locator.name}: the source has no rows; add rows to it")
    return source


def _builder_for(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in DATA_EXTENSIONS:
        known = ", ".join(DATA_EXTENSIONS)
        raise AutotrainError(f"{path}: unsupported file type {suffix!r}; use one of: {known}")
    return DATA_EXTENSIONS[suffix]


#: Files smaller than this convert to Arrow in a blink: their progress bar is noise.
QUIET_BELOW_BYTES = 64 * 2**20


@contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """``datasets``' progress bars off inside the block (when ``quiet``), as they were after."""
    restore = quiet and datasets.is_progress_bar_enabled()
    if restore:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if restore:
            datasets.enable_progress_bars()


@contextmanager
def _parser_errors_unlogged() -> Iterator[None]:
    """``datasets``' JSON and CSV builders log a parse error before raising it; the error that
    names the file and line is ours, so theirs is not printed as well."""
    parsers = logging.getLogger("datasets.packaged_modules")
    level = parsers.level
    parsers.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        parsers.setLevel(level)


def _load_one_file(path: str) -> datasets.Dataset:
    """One file as a dataset; raises :class:`EmptySourceError` when it holds no rows."""
    builder = _builder_for(path)
    reason = _empty_before_reading(path, builder)
    if reason:
        raise _empty_file_error(path, reason)
    if builder in ("json", "csv"):
        check_utf8(path)
    options = {"keep_default_na": False} if builder == "csv" else {}
    quiet = os.path.getsize(path) < QUIET_BELOW_BYTES
    try:
        with quiet_progress(quiet), _parser_errors_unlogged():
            dataset = datasets.load_dataset(builder, data_files=path, split="train", **options)
        if builder == "csv" and any(
            getattr(f, "dtype", "string") != "string" for f in dataset.features.values()
        ):  # CSV cells are text: keep "95" a string rather than an inferred integer column
            text = datasets.Features({c: datasets.Value("string") for c in dataset.column_names})
            with quiet_progress(quiet), _parser_errors_unlogged():
                dataset = datasets.load_dataset(
                    builder, data_files=path, split="train", features=text, **options
                )
    except Exception as err:  # datasets wraps parser errors in several types
        reason = _empty_after_reading(path, builder)
        if reason:
            raise _empty_file_error(path, reason) from None
        locate = {"json": locate_malformed_json, "csv": locate_malformed_csv}.get(builder)
        located = locate(path) if locate is not None else None
        if located:
            raise AutotrainError(f"{located}; fix or delete that line") from None
        raise AutotrainError(
            f"{path}: could not be read as {builder} ({_first_line(err.__cause__ or err)}); "
            "check the file's format"
        ) from None
    if len(dataset) == 0:
        raise _empty_file_error(path, _empty_after_reading(path, builder) or "0 rows")
    if builder == "json" and _json_paths(dataset.features):
        dataset = _reread_mixed_json(path, dataset.features)
    return dataset


# -- JSON columns whose values differ in type ---------------------------------------------------
def _json_paths(feature: object, path: tuple = ()) -> list[tuple]:
    """Paths (keys, and 0 for "every item of a list") to the ``datasets.Json`` fields of
    ``feature``: the fields ``datasets`` stores as JSON text because their values differ in type
    (a prompt that is a string in one row and a message list in another)."""
    if isinstance(feature, datasets.Json):
        return [path]
    if isinstance(feature, dict):  # Features and struct features
        return [p for key, sub in feature.items() for p in _json_paths(sub, (*path, key))]
    if isinstance(feature, list | tuple):
        return [p for sub in feature for p in _json_paths(sub, (*path, 0))]
    sub = getattr(feature, "feature", None)  # List, LargeList, Sequence
    return _json_paths(sub, (*path, 0)) if sub is not None else []


def _as_json_text(value: object, path: tuple) -> object:
    """``value`` with the field at ``path`` written as JSON text (strings too: ``"0"`` becomes
    ``'"0"'``, so it reads back as the string it was)."""
    if value is None:
        return None
    if not path:
        return json.dumps(value, ensure_ascii=False)
    key, rest = path[0], path[1:]
    if key == 0:
        return [_as_json_text(item, rest) for item in value] if isinstance(value, list) else value
    if isinstance(value, dict):
        return {**value, key: _as_json_text(value.get(key), rest)}
    return value


def _reread_mixed_json(path: str, features: datasets.Features) -> datasets.Dataset:
    """The rows of a JSON file whose fields differ in type, read back as they are in the file.

    ``datasets`` keeps such a field as JSON text, but writes a string that is itself valid JSON
    as it is, so the string ``"0"`` reads back as the number 0, ``"null"`` as None and ``"[1]"``
    as a list: a valid row would be refused, or changed. Here every value of such a field is
    written as JSON text, so each one reads back unchanged.
    """
    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read()
    if is_json_array(path):
        rows = [value for _, value in json_array_elements(text)]
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = [row if isinstance(row, dict) else {} for row in rows]
    for field_path in _json_paths(features):
        rows = [_as_json_text(row, field_path) for row in rows]
    columns = {name: [row.get(name) for row in rows] for name in features}
    return datasets.Dataset.from_dict(columns, features=features)


def _load_files(
    paths: list[str], name: str, splits: tuple[str, ...] = (), split: str | None = None
) -> LoadedSource:
    """Concatenate files; in a folder (``split`` given) empty files are skipped, not all."""
    parts, loaded, start, empty = [], [], 0, []
    for path in paths:
        try:
            dataset = _load_one_file(path)
        except EmptySourceError:
            if split is None:
                raise
            empty.append(path)
            continue
        loaded.append(dataset)
        parts.append(FilePart(path, start, len(dataset)))
        start += len(dataset)
    if not loaded:
        files = ", ".join(Path(path).name for path in empty)
        raise EmptySourceError(
            f"{name}: every data file for split {split!r} is empty ({files}); add rows to them"
        )
    if empty:
        log.warning("%s: skipped empty data files: %s", name, ", ".join(empty))
    if len(loaded) == 1:
        dataset = loaded[0]
    else:
        try:
            dataset = datasets.concatenate_datasets(loaded)
        except ValueError as err:
            columns = {
                part.path: sorted(d.column_names) for part, d in zip(parts, loaded, strict=True)
            }
            raise AutotrainError(
                f"{name}: files have different columns or types ({columns}); "
                f"make every file use the same fields ({_first_line(err)})"
            ) from None
    return LoadedSource(dataset, RowLocator(name, tuple(parts)), splits)


def _load_folder(path: str, split: str | None) -> LoadedSource:
    if _is_saved_dataset(path):
        return _load_saved(path, split)
    from datasets.data_files import DataFilesDict, get_data_patterns

    try:
        files = DataFilesDict.from_patterns(get_data_patterns(path), path)
    except Exception:  # EmptyDatasetError and friends: no data files at all
        files = {}
    by_split = {
        str(name): sorted(f for f in found if Path(f).suffix.lower() in DATA_EXTENSIONS)
        for name, found in files.items()
    }
    by_split = {name: found for name, found in by_split.items() if found}
    if not by_split:
        known = ", ".join(DATA_EXTENSIONS)
        raise AutotrainError(f"{path}: the folder holds no data files; add {known} files")
    wanted = split or "train"
    if wanted not in by_split:
        raise AutotrainError(
            f"{path}: no files for split {wanted!r} (found splits: {', '.join(by_split)}); "
            f"name the files after the split, e.g. validation.jsonl, or set {option_name('split')}"
        )
    builders = {_builder_for(f) for f in by_split[wanted]}
    if len(builders) > 1:
        raise AutotrainError(
            f"{path}: split {wanted!r} mixes file types ({', '.join(sorted(builders))}); "
            "keep one file type per split"
        )
    return _load_files(by_split[wanted], name=path, splits=tuple(by_split), split=wanted)


def _is_saved_dataset(path: str) -> bool:
    return any(
        os.path.exists(os.path.join(path, marker)) for marker in ("state.json", "dataset_dict.json")
    )


def _load_saved(path: str, split: str | None) -> LoadedSource:
    loaded = datasets.load_from_disk(path)
    if isinstance(loaded, datasets.DatasetDict):
        wanted = split or "train"
        if wanted not in loaded:
            raise AutotrainError(
                f"{path}: no split {wanted!r} (found: {', '.join(loaded)}); "
                f"set {option_name('split')}"
            )
        return LoadedSource(loaded[wanted], RowLocator(f"{path} [{wanted}]"), tuple(loaded))
    return LoadedSource(loaded, RowLocator(path))


def _load_named(ref: str, split: str | None, subset: str | None) -> LoadedSource:
    wanted = split or "train"
    try:
        dataset = datasets.load_dataset(ref, subset, split=wanted)
    except Exception as err:
        message = _first_line(err)
        raise AutotrainError(
            f"could not load dataset {ref!r} (subset={subset!r}, split={wanted!r}): {message}; "
            "check the name and split, or give a local file (the hub may be offline)"
        ) from None
    return LoadedSource(dataset, RowLocator(f"dataset {ref!r} [{wanted}]"))
