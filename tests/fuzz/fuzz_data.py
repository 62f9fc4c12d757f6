"""Hypothesis strategies for data files: valid ones, and ones that are bad in a known place.

A ``DataCase`` is a file's bytes plus what its error must say: the line of the bad row (or the
range the parser may name), the field, or only the file when the whole file is at fault. Every
generator here makes input that is certainly bad for its category; valid input (including what a
"bad" generator could accidentally produce, such as extra columns) is only ever checked to pass.

Row kinds: ``messages`` (chat rows), ``prompt_completion`` and ``preference`` (chosen/rejected
with a prompt), in ``.jsonl``, ``.json`` (an array, pretty-printed or not) and ``.csv`` (the
kinds whose cells are strings). SFT kinds train with ``SFTModule``, preference rows with
``DPOModule``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

KNOWN_ROLES = ("system", "user", "assistant", "tool")
OBJECTIVE = {"messages": "SFTModule", "prompt_completion": "SFTModule",
             "preference": "DPOModule"}
FORMATS = ("jsonl", "json", "csv")
#: Marker put into a string value and then replaced by raw bytes (non-UTF-8 cases).
MARK = "\u2603MARK\u2603"


@dataclass
class DataCase:
    """A data file and what its error must name."""

    kind: str
    suffix: str
    content: bytes
    line: int | tuple[int, int] | None = None
    names: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def objective(self) -> str:
        return OBJECTIVE[self.kind]


# -- valid rows ------------------------------------------------------------------------------------
_TEXT_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2603")
texts = st.text(_TEXT_CHARS, min_size=1, max_size=24).filter(lambda s: s.strip()) | \
    st.sampled_from(["What is 2 + 3?", "5", "Hello, world", 'She said "hi"', "line one\nline two"])


@st.composite
def messages_rows(draw) -> dict[str, Any]:
    turns = []
    if draw(st.booleans()):
        turns.append({"role": "system", "content": draw(texts)})
    for _ in range(draw(st.integers(1, 2))):
        turns += [{"role": "user", "content": draw(texts)},
                  {"role": "assistant", "content": draw(texts)}]
    return {"messages": turns}


@st.composite
def prompt_completion_rows(draw, strings_only: bool = False) -> dict[str, Any]:
    prompt, completion = draw(texts), draw(texts)
    if not strings_only and draw(st.booleans()):
        prompt = [{"role": "user", "content": prompt}]
        completion = [{"role": "assistant", "content": completion}]
    return {"prompt": prompt, "completion": completion}


@st.composite
def preference_rows(draw, strings_only: bool = False) -> dict[str, Any]:
    prompt, chosen = draw(texts), draw(texts)
    rejected = chosen + " no"  # never identical to chosen (such pairs are dropped, not refused)
    if not strings_only and draw(st.booleans()):
        return {"prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def rows_of(kind: str, strings_only: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "messages":
        return messages_rows()
    if kind == "prompt_completion":
        return prompt_completion_rows(strings_only)
    return preference_rows(strings_only)


def kinds_for(suffix: str) -> tuple[str, ...]:
    return ("prompt_completion", "preference") if suffix == "csv" else tuple(OBJECTIVE)


# -- rendering rows as files, with the line each row starts on ------------------------------------
@dataclass
class Rendered:
    text: str
    starts: list[int]  # 1-based line of each row

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1


def render(rows: list[dict[str, Any]], suffix: str, indent: int | None = None) -> Rendered:
    """``rows`` as a file; JSON values are written with ``json.dumps`` (NaN never appears)."""
    if suffix == "jsonl":
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
        return Rendered("".join(f"{line}\n" for line in lines), list(range(1, len(rows) + 1)))
    if suffix == "json":
        text, starts = "[\n", []
        for i, row in enumerate(rows):
            starts.append(text.count("\n") + 1)
            text += json.dumps(row, ensure_ascii=False, indent=indent)
            text += ",\n" if i < len(rows) - 1 else "\n"
        return Rendered(text + "]\n", starts)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    starts = []
    for row in rows:
        starts.append(buffer.getvalue().count("\n") + 1)
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return Rendered(buffer.getvalue(), starts)


@st.composite
def file_rows(draw, kind: str, suffix: str, most: int = 5) -> list[dict[str, Any]]:
    return draw(st.lists(rows_of(kind, strings_only=suffix == "csv"), min_size=1, max_size=most))


@st.composite
def kind_and_suffix(draw, suffixes: tuple[str, ...] = FORMATS) -> tuple[str, str]:
    suffix = draw(st.sampled_from(suffixes))
    return draw(st.sampled_from(kinds_for(suffix))), suffix


# -- values of a wrong type ------------------------------------------------------------------------
scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans())
small_json = st.recursive(st.none() | scalars | texts,
                          lambda inner: st.lists(inner, max_size=3) |
                          st.dictionaries(texts, inner, max_size=3), max_leaves=6)
#: Not a message list: for ``messages`` and the prompt/completion/chosen/rejected columns.
not_a_message_list = st.one_of(
    scalars, st.none(), st.just([]),
    st.dictionaries(texts, small_json, max_size=3),
    st.lists(st.one_of(scalars, texts, st.lists(scalars, max_size=2)), min_size=1, max_size=3),
)
#: Not a string (a message's content): anything else JSON holds.
not_a_string = st.one_of(scalars, st.none(), st.lists(small_json, max_size=3),
                         st.dictionaries(texts, small_json, max_size=3))
not_a_message = st.one_of(scalars, st.none(), texts, st.lists(scalars, max_size=2))
#: Not a name of a known role.
unknown_roles = st.one_of(
    st.sampled_from(["bot", "User", "ASSISTANT", "human", "gpt", "", " user", "assistant ",
                     "model", "function", "sys"]),
    texts.filter(lambda s: s not in KNOWN_ROLES),
    scalars, st.none(), st.lists(texts, max_size=2))


# -- bad data, by category -------------------------------------------------------------------------
def _case(kind: str, suffix: str, rendered: Rendered | str | bytes, **expect) -> DataCase:
    text = rendered.text if isinstance(rendered, Rendered) else rendered
    content = text.encode("utf-8") if isinstance(text, str) else text
    return DataCase(kind, suffix, content, **expect)


@st.composite
def truncated(draw) -> DataCase:
    """A file cut short inside a record (or a JSONL line cut inside, with the rest kept)."""
    kind, suffix = draw(kind_and_suffix())
    rows = draw(file_rows(kind, suffix))
    if suffix == "jsonl":
        k = draw(st.integers(0, len(rows) - 1))
        rendered = render(rows, suffix)
        lines = rendered.text.splitlines(keepends=True)
        cut = draw(st.integers(1, len(lines[k].rstrip("\n")) - 1))
        tail = lines[k + 1:] if draw(st.booleans()) else []
        text = "".join(lines[:k]) + lines[k][:cut] + ("\n" if tail else "") + "".join(tail)
        return _case(kind, suffix, text, line=k + 1, note="jsonl line cut")
    if suffix == "json":
        rendered = render(rows, suffix, indent=draw(st.sampled_from([None, 2])))
        cut = draw(st.integers(1, len(rendered.text.rstrip()) - 1))
        text = rendered.text[:cut]
        element = max([s for s in rendered.starts if s <= rendered.line_of(cut)], default=1)
        return _case(kind, suffix, text, line=(element, text.count("\n") + 1),
                     note="json array cut")
    # CSV: cut inside a quoted cell, which leaves an unterminated quote.
    k = draw(st.integers(0, len(rows) - 1))
    column = "completion" if kind == "prompt_completion" else "chosen"
    rows[k][column] = draw(texts) + QUOTED
    rendered = render(rows, suffix)
    cut = rendered.text.index(_csv_cell(QUOTED)[1:-1], _offset_of_line(rendered.text,
                                                                       rendered.starts[k]))
    # never right after a quote: a cut inside a doubled quote ("") would close the cell
    cut = draw(st.sampled_from([end for end in range(cut + 1, cut + len(QUOTED))
                                if rendered.text[end - 1] != '"']))
    return _case(kind, suffix, rendered.text[:cut], line=rendered.starts[k],
                 note="csv quoted cell cut")


#: A cell value that CSV must quote (a comma, quotes and a line break).
QUOTED = ', "and" more\non the next line'


def _offset_of_line(text: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.index("\n", offset) + 1
    return offset


@st.composite
def wrong_types(draw) -> DataCase:
    """One field of one row holds a value of the wrong JSON type."""
    kind, suffix = draw(kind_and_suffix(("jsonl", "json")))
    rows = draw(file_rows(kind, suffix))
    k = draw(st.integers(0, len(rows) - 1))
    row = rows[k]
    if kind == "messages":
        turns = row["messages"]
        i = draw(st.integers(0, len(turns) - 1))
        target = draw(st.sampled_from(["messages", "item", "content", "role", "weight", "name",
                                       "tool_calls"]))
        if target == "messages":
            row["messages"] = draw(not_a_message_list)
        elif target == "item":
            turns[i] = draw(not_a_message)
        elif target == "content":
            turns[i]["content"] = draw(not_a_string)
        elif target == "role":
            turns[i]["role"] = draw(st.one_of(scalars, st.none(), st.lists(texts, max_size=2),
                                              st.dictionaries(texts, texts, max_size=2)))
        elif target == "weight":
            turns[i]["weight"] = draw(st.one_of(texts, st.booleans(), st.lists(scalars, max_size=2),
                                                st.integers(-10**6, -1)))
        elif target == "name":
            turns[i]["name"] = draw(st.one_of(scalars, st.lists(texts, min_size=1, max_size=2)))
        else:
            turns[i]["tool_calls"] = draw(st.one_of(
                st.integers(1, 9), texts, st.just(True),
                st.dictionaries(texts, texts, min_size=1, max_size=2)))
        names = ["messages"]
    else:
        columns = ["prompt", "completion"] if kind == "prompt_completion" else \
            ["prompt", "chosen", "rejected"]
        column = draw(st.sampled_from(columns))
        row[column] = draw(not_a_message_list)
        names = [column] if column != "prompt" or kind != "preference" else ["prompt"]
    rendered = render(rows, suffix, indent=draw(st.sampled_from([None, 2])))
    return _case(kind, suffix, rendered, line=rendered.starts[k], names=names,
                 note=f"wrong type in row {k}")


@st.composite
def missing_columns(draw) -> DataCase:
    """A column missing from one row (named by line), a key missing from one message, or a
    column missing from every row (named by file)."""
    kind, suffix = draw(kind_and_suffix())
    rows = draw(file_rows(kind, suffix))
    required = {"messages": ["messages"], "prompt_completion": ["prompt", "completion"],
                "preference": ["chosen", "rejected"]}[kind]
    how = draw(st.sampled_from(["every row", "one row", "message key"] if kind == "messages"
                               else ["every row", "one row"]))
    if suffix == "csv" and how == "one row":
        if kind != "prompt_completion":
            how = "every row"
        else:  # a short CSV row: the completion cell is missing
            k = draw(st.integers(0, len(rows) - 1))
            rows[k]["prompt"] = "a prompt"
            rendered = render(rows, suffix)
            lines = rendered.text.split("\n")
            start = rendered.starts[k] - 1
            end = rendered.starts[k + 1] - 1 if k + 1 < len(rows) else len(lines) - 1
            lines[start:end] = ["a prompt"]
            return _case(kind, suffix, "\n".join(lines), line=rendered.starts[k],
                         names=["completion"], note="csv row without its completion cell")
    if how == "every row":
        gone = draw(st.sampled_from(required))
        for row in rows:
            row.pop(gone)
        return _case(kind, suffix, render(rows, suffix), names=[], note=f"no {gone} column")
    k = draw(st.integers(0, len(rows) - 1))
    if how == "one row":
        gone = draw(st.sampled_from(required))
        rows[k].pop(gone)
        if len(rows) == 1:  # then it is every row: the file has no such column
            return _case(kind, suffix, render(rows, suffix), note=f"no {gone} column")
        rendered = render(rows, suffix)
        return _case(kind, suffix, rendered, line=rendered.starts[k], names=[gone],
                     note=f"row {k} without {gone}")
    turns = rows[k]["messages"]
    i = draw(st.integers(0, len(turns) - 1))
    turns[i].pop(draw(st.sampled_from(["role", "content"])))
    rendered = render(rows, suffix)
    return _case(kind, suffix, rendered, line=rendered.starts[k], names=["messages"],
                 note=f"message {i} of row {k} without a key")


def _csv_cell(value: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()


#: Columns that make a second row format fit as well, so no format can be chosen.
AMBIGUOUS = {"messages": [["text"], ["prompt", "completion"], ["conversations"],
                          ["instruction", "output"]],
             "prompt_completion": [["text"], ["messages"], ["chosen", "rejected"]],
             "preference": [["text"], ["messages"], ["instruction", "output"]]}


@st.composite
def extra_columns(draw) -> DataCase:
    """Extra columns that are bad: ones that make the row format ambiguous (named by file), or a
    column the pipeline reads (``tools``, ``margin``) holding a bad value in one row."""
    kind, suffix = draw(kind_and_suffix())
    rows = draw(file_rows(kind, suffix))
    readable = {"messages": "tools", "prompt_completion": "tools", "preference": "margin"}[kind]
    if draw(st.booleans()):
        extra = draw(st.sampled_from(AMBIGUOUS[kind]))
        for row in rows:
            row.update({name: draw(texts) for name in extra})
        return _case(kind, suffix, render(rows, suffix), names=["several row formats"],
                     note=f"ambiguous columns {extra}")
    k = draw(st.integers(0, len(rows) - 1))
    if readable == "tools":
        value = draw(st.one_of(
            texts.filter(lambda s: not _is_json_list_of_objects(s)),
            *([] if suffix == "csv" else [scalars, st.lists(scalars, min_size=1, max_size=2),
                                          st.dictionaries(texts, texts, min_size=1, max_size=2)])))
    else:
        value = draw(st.one_of(
            texts.filter(lambda s: not _is_float(s)),
            *([] if suffix == "csv" else [st.booleans(), st.lists(scalars, max_size=2),
                                          st.dictionaries(texts, texts, max_size=2)])))
    rows[k][readable] = value
    rendered = render(rows, suffix)
    return _case(kind, suffix, rendered, line=rendered.starts[k], names=[readable],
                 note=f"bad {readable} in row {k}")


def _is_json_list_of_objects(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@st.composite
def empty_files(draw) -> DataCase:
    """Files that hold no rows: nothing, blanks, a byte-order mark, ``[]``, a CSV header."""
    kind, suffix = draw(kind_and_suffix())
    blank = draw(st.text(" \t\r\n", max_size=8))
    bom = "\ufeff" if draw(st.booleans()) else ""
    options = [blank, bom + blank]
    if suffix == "json":
        options += [f"{bom}[{blank}]{blank}"]
    if suffix == "csv":
        header = ",".join(["prompt", "completion"] if kind == "prompt_completion" else
                          ["prompt", "chosen", "rejected"])
        options += [f"{bom}{header}\n{blank}"]
    text = draw(st.sampled_from(options))
    return _case(kind, suffix, text, note=f"empty file {text!r}")


#: Byte sequences that are not UTF-8.
NOT_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf",
            b"\xf8\x88\x80\x80\x80", b"\xe9t\xe9"]


@st.composite
def non_utf8(draw) -> DataCase:
    """Bytes that are not UTF-8 inside one value (named by the line they are on), or a whole
    file in UTF-16."""
    kind, suffix = draw(kind_and_suffix())
    rows = draw(file_rows(kind, suffix))
    if draw(st.integers(0, 4)) == 0:
        rendered = render(rows, suffix)
        encoding = draw(st.sampled_from(["utf-16", "utf-32"]))
        return _case(kind, suffix, rendered.text.encode(encoding), line=1,
                     note=f"{encoding} file")
    k = draw(st.integers(0, len(rows) - 1))
    column = {"messages": None, "prompt_completion": "prompt", "preference": "chosen"}[kind]
    if column is None:
        turn = draw(st.integers(0, len(rows[k]["messages"]) - 1))
        rows[k]["messages"][turn]["content"] += MARK
    elif isinstance(rows[k][column], list):
        rows[k][column][0]["content"] += MARK
    else:
        rows[k][column] += MARK
    rendered = render(rows, suffix, indent=draw(st.sampled_from([None, 2])))
    where = rendered.text.index(MARK)
    content = rendered.text.encode("utf-8").replace(MARK.encode("utf-8"),
                                                    draw(st.sampled_from(NOT_UTF8)))
    return _case(kind, suffix, content, line=rendered.line_of(where),
                 note=f"bad bytes in row {k}")


HUGE = 1 << 20  # characters: a line of 1-4 MiB


@st.composite
def huge_lines(draw) -> DataCase:
    """A line of megabytes that is bad: cut short, with a huge value of the wrong type, or with
    a huge unknown role. The error names the line and stays short."""
    kind, suffix = draw(kind_and_suffix(("jsonl", "json")))
    rows = draw(file_rows(kind, suffix, most=3))
    k = draw(st.integers(0, len(rows) - 1))
    size = draw(st.integers(HUGE, 4 * HUGE))
    fault = draw(st.sampled_from(["cut", "type", "role"] if kind == "messages" else
                                 ["cut", "type"]))
    column = {"messages": "messages", "prompt_completion": "completion",
              "preference": "chosen"}[kind]
    if fault == "role":
        rows[k]["messages"][0]["role"] = "r" * size
    elif fault == "type":
        rows[k][column] = {"text": "x" * size} if draw(st.booleans()) else list(range(size // 8))
    else:
        target = rows[k]["messages"][-1] if kind == "messages" else rows[k]
        key = "content" if kind == "messages" else column
        if isinstance(target[key], list):
            target[key][0]["content"] = "y" * size
        else:
            target[key] = "y" * size
    rendered = render(rows, suffix)
    if fault != "cut":
        return _case(kind, suffix, rendered, line=rendered.starts[k], names=[column],
                     note=f"huge {fault} in row {k}")
    lines = rendered.text.splitlines(keepends=True)
    if suffix == "jsonl":
        text = "".join(lines[:k]) + lines[k][: len(lines[k]) // 2]
        return _case(kind, suffix, text, line=k + 1, note=f"huge line {k} cut")
    cut = len(rendered.text) // 2
    element = max(s for s in rendered.starts if s <= rendered.line_of(cut))
    text = rendered.text[:cut]
    return _case(kind, suffix, text, line=(element, text.count("\n") + 1),
                 note="huge json array cut")


@st.composite
def wrong_roles(draw) -> DataCase:
    """A message with an unknown role, or a chat with no assistant message to train on."""
    kind = draw(st.sampled_from(tuple(OBJECTIVE)))
    suffix = draw(st.sampled_from(("jsonl", "json")))
    rows = draw(st.lists(rows_of(kind), min_size=1, max_size=4))
    k = draw(st.integers(0, len(rows) - 1))
    if kind == "messages" and draw(st.integers(0, 3)) == 0:
        rows[k]["messages"] = [{"role": draw(st.sampled_from(["user", "system", "tool"])),
                                "content": draw(texts)}
                               for _ in range(draw(st.integers(1, 3)))]
        rendered = render(rows, suffix)
        return _case(kind, suffix, rendered, line=rendered.starts[k], names=["assistant"],
                     note=f"row {k} without an assistant message")
    if kind == "messages":
        turns = rows[k]["messages"]
    else:
        column = draw(st.sampled_from(["prompt", "completion"] if kind == "prompt_completion"
                                      else ["prompt", "chosen", "rejected"]))
        if not isinstance(rows[k][column], list):
            rows[k][column] = [{"role": "user" if column == "prompt" else "assistant",
                                "content": rows[k][column]}]
        turns = rows[k][column]
    turns[draw(st.integers(0, len(turns) - 1))]["role"] = draw(unknown_roles)
    rendered = render(rows, suffix, indent=draw(st.sampled_from([None, 2])))
    return _case(kind, suffix, rendered, line=rendered.starts[k], names=["role"],
                 note=f"unknown role in row {k}")


@st.composite
def valid_files(draw) -> DataCase:
    """Files that must pass: any kind and format, with extra metadata columns and message keys."""
    kind, suffix = draw(kind_and_suffix())
    rows = draw(file_rows(kind, suffix))
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(["id", "source", "x_meta", "category", "score"]),
                              min_size=1, max_size=3, unique=True))
        value = texts if suffix == "csv" else st.one_of(scalars, texts)
        for row in rows:  # one type per column: Arrow needs that of any column
            for name in names:
                row[name] = draw(value)
        if suffix != "csv":
            names = sorted(names)
            for name in names:
                kinds = {type(row[name]) for row in rows}
                if len(kinds) > 1:
                    for row in rows:
                        row[name] = str(row[name])
    if kind == "messages" and draw(st.booleans()):
        for row in rows:
            row["messages"][-1]["weight"] = draw(st.sampled_from([0.5, 1, 2.0]))
    return _case(kind, suffix, render(rows, suffix, indent=draw(st.sampled_from([None, 2]))),
                 note="valid")


CATEGORIES = {
    "truncated": truncated(),
    "wrong_types": wrong_types(),
    "missing_columns": missing_columns(),
    "extra_columns": extra_columns(),
    "empty_files": empty_files(),
    "non_utf8": non_utf8(),
    "huge_lines": huge_lines(),
    "wrong_roles": wrong_roles(),
}
