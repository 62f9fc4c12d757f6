"""Where a row sits in a text data file, and the faults found by reading the file's lines.

``datasets`` parses a file in blocks and reports a fault without its line, or (for bytes that are
not UTF-8 in JSON lines) not until the row is read. These helpers read the file itself, only when
an error needs a place, to name the line a user can open: a JSONL line, the line a JSON array's
element or a CSV record starts on (a quoted cell may span lines), the first line that is not
UTF-8, the first record that is not valid JSON, not an object, or has too many CSV cells.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from autotrain_pl.errors import AutotrainError


def where_in_file(path: str, local: int) -> str:
    """``path line N`` (or ``path row I (line N)`` for CSV) of the ``local``-th row of a file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl" or (suffix == ".json" and not is_json_array(path)):
        return f"{path} line {_jsonl_line_of_row(path, local)}"
    if suffix == ".json":
        line = _json_array_line_of_row(path, local)
        return f"{path} line {line}" if line is not None else f"{path} row {local}"
    if suffix == ".csv":
        return f"{path} row {local} (line {_csv_line_of_row(path, local)})"
    return f"{path} row {local}"


def is_json_array(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read(4096).lstrip("\ufeff \t\r\n").startswith("[")


def json_array_elements(text: str) -> Iterator[tuple[int, object]]:
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
            for index, (line, _) in enumerate(json_array_elements(handle.read())):
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


def locate_malformed_csv(path: str) -> str | None:
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


def locate_malformed_json(path: str) -> str | None:
    """``path line N: <problem>`` for the first record that is not valid JSON or not an object,
    after ``datasets`` failed to parse the file."""
    if is_json_array(path):
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
        try:
            for line, value in json_array_elements(text):
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
