"""Reading every source type, and errors that point at the file and line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from autotrain_pl.data import load_source, write_jsonl
from autotrain_pl.data.sources import check_source_ref, looks_local
from autotrain_pl.errors import AutotrainError

ROWS = [
    {"prompt": "What is 1 + 1?", "completion": "2", "reference": "2"},
    {"prompt": "What is 2 + 2?", "completion": "4", "reference": "4"},
    {"prompt": "What is 3 + 3?", "completion": "6", "reference": "6"},
]


def _write(tmp_path, kind: str, rows=ROWS):
    if kind == "jsonl":
        return write_jsonl(rows, tmp_path / "data.jsonl")
    path = tmp_path / f"data.{kind}"
    if kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif kind == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet"])
def test_each_file_type_loads_the_same_rows(tmp_path, kind):
    source = load_source(str(_write(tmp_path, kind)))
    assert source.dataset.to_list() == ROWS
    assert source.locator.where(1).startswith(str(tmp_path))


def test_csv_keeps_numbers_as_text(tmp_path):
    path = tmp_path / "nums.csv"
    path.write_text("prompt,completion\nWhat is 2 + 3?,5\n")
    assert load_source(str(path)).dataset[0]["completion"] == "5"


def test_folder_concatenates_files_and_locates_rows_per_file(tmp_path):
    write_jsonl(ROWS[:2], tmp_path / "part-a.jsonl")
    write_jsonl(ROWS[2:], tmp_path / "part-b.jsonl")
    source = load_source(str(tmp_path))
    assert len(source.dataset) == 3
    assert source.locator.where(2) == f"{tmp_path / 'part-b.jsonl'} line 1"


def test_folder_with_split_files_picks_the_split(tmp_path):
    write_jsonl(ROWS[:2], tmp_path / "train.jsonl")
    write_jsonl(ROWS[2:], tmp_path / "validation.jsonl")
    assert len(load_source(str(tmp_path)).dataset) == 2
    assert len(load_source(str(tmp_path), split="validation").dataset) == 1
    with pytest.raises(AutotrainError, match="no files for split 'test'.*found splits: train"):
        load_source(str(tmp_path), split="test")


def test_saved_dataset_dict_folder(tmp_path):
    import datasets

    ds = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "dev": datasets.Dataset.from_list(ROWS[:1])}
    )
    ds.save_to_disk(str(tmp_path / "saved"))
    assert len(load_source(str(tmp_path / "saved"), split="dev").dataset) == 1


def test_jsonl_line_numbers_skip_blank_lines(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS[:2]).replace("\n", "\n\n") + "\n")
    assert load_source(str(path)).locator.where(1) == f"{path} line 3"


def test_malformed_json_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{'prompt': oops}\n")
    with pytest.raises(AutotrainError) as err:
        load_source(str(path))
    message = str(err.value)
    assert f"{path} line 3: malformed JSON" in message and "\n" not in message


def test_malformed_json_array_names_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n {"prompt": "a", "completion": "b"},\n {"prompt": "a" "completion": 1}\n]')
    with pytest.raises(AutotrainError, match=r"bad.json line 3: malformed JSON"):
        load_source(str(path))


def test_missing_local_path_fails_cheaply():
    with pytest.raises(AutotrainError, match="data_path='nope/train.jsonl' does not exist"):
        check_source_ref("nope/train.jsonl")
    assert looks_local("./x") and not looks_local("org/dataset-name")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("hello")
    with pytest.raises(AutotrainError, match="unsupported file type '.txt'"):
        load_source(str(path))


def test_empty_folder(tmp_path):
    with pytest.raises(AutotrainError, match="holds no data files"):
        load_source(str(tmp_path))


def test_named_dataset_offline_gives_one_line_error():
    with pytest.raises(AutotrainError, match="could not load dataset 'no-such-org/no-such-data'"):
        load_source("no-such-org/no-such-data")


def test_synthetic_reference():
    source = load_source("synthetic:arithmetic?n=5&seed=3")
    assert len(source.dataset) == 5 and "messages" in source.dataset.column_names
    assert source.locator.where(2) == "synthetic:arithmetic?n=5&seed=3 row 2"


# -- sources without rows: one line naming the file, never a traceback ---------------------------


def _write_empty(tmp_path, case: str):
    """A file (or folder) that holds no rows, in each way a user produces one."""
    if case == "folder":
        folder = tmp_path / "chats"
        folder.mkdir()
        (folder / "part-a.jsonl").write_text("")
        (folder / "part-b.jsonl").write_text("\n\n")
        return folder
    name, content = {
        "jsonl": ("data.jsonl", ""),
        "jsonl_blank_lines": ("data.jsonl", "\n  \n\t\n"),
        "json": ("data.json", ""),
        "json_blank_lines": ("data.json", "\n\n"),
        "json_empty_array": ("data.json", "[]\n"),
        "csv": ("data.csv", ""),
        "csv_header_only": ("data.csv", "prompt,completion\n"),
        "parquet": ("data.parquet", ""),
    }.get(case, (None, None))
    path = tmp_path / (name or "data.parquet")
    if case == "parquet_zero_rows":
        pd.DataFrame({"prompt": pd.Series([], dtype=str)}).to_parquet(path)
    else:
        path.write_text(content)
    return path


EMPTY_CASES = [
    "jsonl", "jsonl_blank_lines", "json", "json_blank_lines", "json_empty_array", "csv",
    "csv_header_only", "parquet", "parquet_zero_rows", "folder",
]  # fmt: skip


@pytest.mark.parametrize("case", EMPTY_CASES)
@pytest.mark.parametrize("reader", ["load_source", "load_conversations", "read_source"])
def test_a_source_without_rows_is_a_one_line_error_naming_it(tmp_path, case, reader):
    import autotrain_pl.data as data
    from autotrain_pl.data.sources import EmptySourceError

    path = _write_empty(tmp_path, case)
    with pytest.raises(EmptySourceError) as err:
        getattr(data, reader)(str(path))
    message = str(err.value)
    assert isinstance(err.value, AutotrainError) and "\n" not in message
    assert message.startswith(f"{path}: ")
    if case == "folder":  # the folder, and the files in it that are empty
        assert "part-a.jsonl" in message and "part-b.jsonl" in message
    else:
        assert "no rows" in message and "add " in message


def test_an_empty_file_in_a_folder_is_skipped_when_others_have_rows(tmp_path, caplog):
    (tmp_path / "part-a.jsonl").write_text("")
    write_jsonl(ROWS[:2], tmp_path / "part-b.jsonl")
    source = load_source(str(tmp_path))
    assert source.dataset.to_list() == ROWS[:2]
    assert source.locator.where(1) == f"{tmp_path / 'part-b.jsonl'} line 2"
    assert "part-a.jsonl" in caplog.text  # the skipped file is reported


def test_a_file_with_rows_after_blank_lines_still_loads(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n\n" + json.dumps(ROWS[0]) + "\n")
    assert load_source(str(path)).dataset.to_list() == ROWS[:1]


def test_a_named_dataset_without_rows_is_an_error(monkeypatch):
    import datasets

    empty = datasets.Dataset.from_dict({"prompt": [], "completion": []})
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: empty)
    with pytest.raises(AutotrainError, match=r"dataset 'org/empty' \[train\]: the source has no"):
        load_source("org/empty")
