"""Where rows come from: local files and folders, dataset names, and ``synthetic:`` references.

All reading goes through ``datasets`` (its loaders, cache and fingerprints). This module adds what
a user needs when something is wrong: every loaded dataset carries a :class:`RowLocator` that maps
a row index back to a file and line (JSONL) or row, so errors point at the place to fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from autotrain_pl.data.synthetic import is_synthetic_ref, parse_synthetic_ref, synthetic_rows
from autotrain_pl.errors import AutotrainError

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
                return _where_in_file(part.path, index - part.start)
        return f"{self.name} row {index}"


def _where_in_file(path: str, local: int) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl" or (suffix == ".json" and not _is_json_array(path)):
        return f"{path} line {_jsonl_line_of_row(path, local)}"
    if suffix == ".csv":
        return f"{path} row {local} (line {local + 2})"
    return f"{path} row {local}"


def _is_json_array(path: str) -> bool:
    with open(path, encoding="utf-8") as handle:
        return handle.read(4096).lstrip().startswith("[")


def _jsonl_line_of_row(path: str, row: int) -> int:
    """1-based line of the ``row``-th record; blank lines hold no record (only used for errors)."""
    seen = -1
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                seen += 1
                if seen == row:
                    return number
    return row + 1


def _locate_malformed_json(path: str) -> str | None:
    """``path line N: <json error>`` for the first bad record, after ``datasets`` failed to parse."""
    if _is_json_array(path):
        try:
            with open(path, encoding="utf-8") as handle:
                json.load(handle)
        except json.JSONDecodeError as err:
            return f"{path} line {err.lineno}: malformed JSON ({err.msg})"
        return None
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError as err:
                return f"{path} line {number}: malformed JSON ({err.msg} at column {err.colno})"
    return None


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
    if looks_local(ref) and not os.path.exists(os.path.expanduser(ref)):
        raise AutotrainError(
            f"{field_name}={ref!r} does not exist; give an existing file or folder (jsonl, json, "
            "csv, parquet), a dataset name, or a synthetic:<generator> reference"
        )


def load_source(ref: str, split: str | None = None, subset: str | None = None) -> LoadedSource:
    """Load rows from a file, folder, dataset name or ``synthetic:`` reference.

    Args:
        ref: path, folder, ``datasets`` name, or ``synthetic:name?key=value``.
        split: split of a folder or named dataset (default ``train``); ignored for single files.
        subset: dataset configuration name for ``datasets.load_dataset``.
    """
    if is_synthetic_ref(ref):
        dataset = datasets.Dataset.from_list(synthetic_rows(ref))
        return LoadedSource(dataset, RowLocator(ref))
    check_source_ref(ref)
    path = os.path.expanduser(ref)
    if os.path.isfile(path):
        return _load_files([path], name=path)
    if os.path.isdir(path):
        return _load_folder(path, split)
    return _load_named(ref, split, subset)


def _builder_for(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in DATA_EXTENSIONS:
        known = ", ".join(DATA_EXTENSIONS)
        raise AutotrainError(f"{path}: unsupported file type {suffix!r}; use one of: {known}")
    return DATA_EXTENSIONS[suffix]


def _load_one_file(path: str) -> datasets.Dataset:
    builder = _builder_for(path)
    options = {"keep_default_na": False} if builder == "csv" else {}
    try:
        dataset = datasets.load_dataset(builder, data_files=path, split="train", **options)
        if builder == "csv" and any(
            getattr(f, "dtype", "string") != "string" for f in dataset.features.values()
        ):  # CSV cells are text: keep "95" a string rather than an inferred integer column
            text = datasets.Features({c: datasets.Value("string") for c in dataset.column_names})
            dataset = datasets.load_dataset(
                builder, data_files=path, split="train", features=text, **options
            )
        return dataset
    except Exception as err:  # datasets wraps parser errors in several types
        located = _locate_malformed_json(path) if builder == "json" else None
        if located:
            raise AutotrainError(f"{located}; fix or delete that line") from None
        cause = str(err.__cause__ or err).splitlines()[0]
        raise AutotrainError(
            f"{path}: could not be read as {builder} ({cause}); check the file's format"
        ) from None


def _load_files(paths: list[str], name: str, splits: tuple[str, ...] = ()) -> LoadedSource:
    parts, loaded, start = [], [], 0
    for path in paths:
        dataset = _load_one_file(path)
        loaded.append(dataset)
        parts.append(FilePart(path, start, len(dataset)))
        start += len(dataset)
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
                f"make every file use the same fields ({str(err).splitlines()[0]})"
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
            "name the files after the split, e.g. validation.jsonl, or set the split option"
        )
    builders = {_builder_for(f) for f in by_split[wanted]}
    if len(builders) > 1:
        raise AutotrainError(
            f"{path}: split {wanted!r} mixes file types ({', '.join(sorted(builders))}); "
            "keep one file type per split"
        )
    return _load_files(by_split[wanted], name=path, splits=tuple(by_split))


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
                f"{path}: no split {wanted!r} (found: {', '.join(loaded)}); set the split option"
            )
        return LoadedSource(loaded[wanted], RowLocator(f"{path} [{wanted}]"), tuple(loaded))
    return LoadedSource(loaded, RowLocator(path))


def _load_named(ref: str, split: str | None, subset: str | None) -> LoadedSource:
    wanted = split or "train"
    try:
        dataset = datasets.load_dataset(ref, subset, split=wanted)
    except Exception as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise AutotrainError(
            f"could not load dataset {ref!r} (subset={subset!r}, split={wanted!r}): {message}; "
            "check the name and split, or give a local file (the hub may be offline)"
        ) from None
    return LoadedSource(dataset, RowLocator(f"dataset {ref!r} [{wanted}]"))
