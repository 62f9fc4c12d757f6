"""Where rows come from: local files and folders, dataset names, and ``synthetic:`` references.

All reading goes through ``datasets`` (its loaders, cache and fingerprints). This module adds what
a user needs when something is wrong: every loaded dataset carries a :class:`RowLocator` that maps
a row index back to a file and line (JSONL) or row, so errors point at the place to fix.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import datasets

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
                return _where_in_file(part.path, index - part.start)
        return f"{self.name} row {index}"


def _where_in_file(path: str, local: int) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl" or (suffix == ".json" and not _is_json_array(path)):
        return f"{path} line {_jsonl_line_of_row(path, local)}"
    if suffix == ".json":
        line = _json_array_line_of_row(path, local)
        return f"{path} line {line}" if line is not None else f"{path} row {local}"
    if suffix == ".csv":
        return f"{path} row {local} (line {_csv_line_of_row(path, local)})"
    return f"{path} row {local}"


def _is_json_array(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read(4096).lstrip("\ufeff \t\r\n").startswith("[")


def _json_array_elements(text: str) -> Iterator[tuple[int, object]]:
    """``(line, value)`` of each element of a JSON array, in order; raises ``JSONDecodeError``.

    Errors name a line, so a row of a ``.json`` file is found by the line its object starts on,
    not only by its index.
    """
    decoder = json.JSONDecoder()
    blank = re.compile(r"[ \t\r\n]*")
    position = blank.match(text, text.index("[") + 1).end()
    if text.startswith("]", position):
        return
    while True:
        value, end = decoder.raw_decode(text, position)
        yield text.count("\n", 0, position) + 1, value
        position = blank.match(text, end).end()
        if text.startswith("]", position):
            return
        if not text.startswith(",", position):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
        position = blank.match(text, position + 1).end()


def _json_array_line_of_row(path: str, row: int) -> int | None:
    """1-based line where element ``row`` of a JSON array starts (None if it cannot be found)."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for index, (line, _) in enumerate(_json_array_elements(handle.read())):
                if index == row:
                    return line
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        return None
    return None


def _csv_records(path: str) -> Iterator[tuple[int, int, list[str]]]:
    """``(first line, last line, cells)`` of each non-blank CSV record, the header first; a
    quoted cell may span lines, so record ``i`` is not always line ``i + 1``."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        end = 0
        for cells in reader:
            start, end = end + 1, reader.line_num
            if cells:
                yield start, end, cells


def _csv_line_of_row(path: str, row: int) -> int:
    """1-based line where data row ``row`` (after the header) starts."""
    try:
        for index, (line, _, _) in enumerate(_csv_records(path)):
            if index == row + 1:
                return line
    except csv.Error:
        pass
    return row + 2


def _locate_malformed_csv(path: str) -> str | None:
    """``path line N: <problem>`` for the first record the CSV reader refuses or that has more
    cells than the header (``pandas`` reports such a record without the file's line)."""
    width = None
    read_to = 0  # the last line of the last good record
    try:
        for line, end, cells in _csv_records(path):
            if width is None:
                width = len(cells)
            elif len(cells) > width:
                return (f"{path} line {line}: {len(cells)} cells but the header has {width} "
                        "(quote a cell that holds a comma)")
            read_to = end
    except csv.Error as err:
        return f"{path} line {read_to + 1}: malformed CSV ({err})"
    return None


#: Byte-order marks of encodings that are not UTF-8.
_FOREIGN_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                 (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
#: Files already found to be UTF-8, by (path, size, modification time): a check per load is
#: one read of the file, and a run loads the same file several times.
_UTF8_FILES: set[tuple[str, int, int]] = set()


def check_utf8(path: str) -> None:
    """Raise an error naming the first line of ``path`` that is not UTF-8.

    Text files are read as UTF-8. Without this check a bad byte is found by the parser with no
    line number (CSV), or not at all until the row is read, deep inside training (JSON lines:
    Arrow keeps the bytes and fails when the string is first used).
    """
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key in _UTF8_FILES:
        return
    with open(path, "rb") as handle:
        head = handle.read(4)
        for bom, name in _FOREIGN_BOMS:
            if head.startswith(bom):
                raise AutotrainError(f"{path} line 1: the file is {name}-encoded; save it as "
                                     "UTF-8")
        handle.seek(0)
        line, carry = 1, b""
        while chunk := handle.read(1 << 20):
            chunk = carry + chunk
            cut = chunk.rfind(b"\n") + 1  # whole lines only: a character never spans a newline
            piece, carry = (chunk[:cut], chunk[cut:]) if cut else (b"", chunk)
            _check_utf8_piece(path, piece, line)
            line += piece.count(b"\n")
        _check_utf8_piece(path, carry, line)
    if len(_UTF8_FILES) > 1024:
        _UTF8_FILES.clear()
    _UTF8_FILES.add(key)


def _check_utf8_piece(path: str, piece: bytes, first_line: int) -> None:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = piece.rfind(b"\n", 0, err.start) + 1
        line = first_line + piece.count(b"\n", 0, err.start)
        raise AutotrainError(
            f"{path} line {line}: not valid UTF-8 (byte 0x{piece[err.start]:02x} at column "
            f"{err.start - line_start + 1}); save the file as UTF-8"
        ) from None


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


def _not_an_object(path: str, line: int, value: object) -> str:
    kind = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")
    return f"{path} line {line}: a row must be a JSON object ({{...}}), not {kind}"


def _locate_malformed_json(path: str) -> str | None:
    """``path line N: <problem>`` for the first record that is not valid JSON or not an object,
    after ``datasets`` failed to parse the file."""
    if _is_json_array(path):
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
        try:
            for line, value in _json_array_elements(text):
                if not isinstance(value, dict):
                    return _not_an_object(path, line, value)
        except json.JSONDecodeError as err:
            return f"{path} line {err.lineno}: malformed JSON ({err.msg})"
        return None
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                return f"{path} line {number}: malformed JSON ({err.msg} at column {err.colno})"
            if not isinstance(value, dict) and value is not None:
                return _not_an_object(path, number, value)
    return None


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
        if builder == "json" and _is_json_array(path):
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
        locate = {"json": _locate_malformed_json, "csv": _locate_malformed_csv}.get(builder)
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
    if _is_json_array(path):
        rows = [value for _, value in _json_array_elements(text)]
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
