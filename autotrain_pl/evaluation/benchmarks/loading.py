"""Benchmark rows from the hub (``datasets``) or from local files in the published layouts.

``data_path`` may be:

- None: the benchmark's hub dataset (``cais/mmlu``...), through ``datasets.load_dataset``;
- a hub name (``my-org/mmlu-copy``) with the same columns;
- a folder laid out like the hub repository or a ``save_to_disk`` copy. The split's files are
  found as ``<split>.<ext>``, ``<split>-*.<ext>`` (hub shards such as
  ``test-00000-of-00001.parquet``) or ``<split>/*.<ext>``, first inside the configuration's
  subfolder when there is one (``all/`` for MMLU, ``ARC-Easy/``, ``multiple_choice/``...);
- a single file: it is the scored split; the few-shot split is looked up next to it.

Files are parquet, jsonl/json or csv with the hub's columns. In csv files, list or dict cells
(``choices``, ``mc2_targets``...) are JSON text.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError

EXTENSIONS = (".parquet", ".jsonl", ".json", ".csv")


def load_rows(data_path: str | None, hub_path: str, subset: str | None, split: str,
              required_columns: Sequence[str], *, benchmark: str, scored: bool = True
              ) -> tuple[list[dict], str]:
    """Rows of one split and a short description of where they came from.

    Args:
        scored: True for the scored split (a single-file ``data_path`` is that split), False for
            the few-shot split (looked up next to a single file).

    Raises:
        AutotrainError: no data for the split, an unreadable file, or missing columns (naming
            the file and the columns).
    """
    if data_path is None or not _is_local(data_path):
        name = data_path or hub_path
        rows = _load_hub(name, subset, split, benchmark)
        where = f"dataset {name!r} ({subset or 'default'}, {split})"
    else:
        path = Path(os.path.expanduser(data_path))
        saved = _saved_dataset(path, subset)
        if saved is not None:
            rows, where = _load_saved(saved, split, benchmark), f"{saved} [{split}]"
        else:
            files = find_split_files(path, subset, split, scored)
            if not files:
                inside = f" (also inside {subset}/)" if subset else ""
                raise AutotrainError(
                    f"{data_path}: no {benchmark} files for split {split!r}; expected "
                    f"{split}.parquet, {split}-*.parquet or {split}/*.parquet (or .jsonl/.csv)"
                    f"{inside}"
                )
            rows = [row for file in files for row in read_file_rows(file)]
            where = ", ".join(str(f) for f in files)
    check_columns(rows, required_columns, where, benchmark)
    return rows, where


def find_split_files(path: Path, subset: str | None, split: str, scored: bool = True
                     ) -> list[Path]:
    """Files holding ``split`` under a local file or folder ([] when there are none)."""
    if path.is_file():
        return [path] if scored else _match(path.parent, split)
    candidates = [path / subset, path] if subset else [path, path / "default", path / "all"]
    for folder in candidates:
        if folder.is_dir():
            found = _match(folder, split)
            if found:
                return found
    return []


def read_file_rows(path: Path) -> list[dict]:
    """All rows of a parquet, jsonl/json or csv file as dicts."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        if suffix in (".jsonl", ".json"):
            text = path.read_text(encoding="utf-8")
            if suffix == ".json" and text.lstrip().startswith("["):
                return list(json.loads(text))
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                return [{k: _json_cell(v) for k, v in row.items()} for row in reader]
    except (OSError, ValueError) as error:
        raise AutotrainError(
            f"{path}: could not be read ({_first_line(error)}); check the file"
        ) from None
    raise AutotrainError(f"{path}: unsupported file type; use one of {', '.join(EXTENSIONS)}")


def check_columns(rows: list[dict], required: Sequence[str], where: str, benchmark: str) -> None:
    if not rows:
        raise AutotrainError(f"{where}: holds no rows for {benchmark}")
    found = list(rows[0])
    missing = [c for c in required if c not in found]
    if missing:
        raise AutotrainError(
            f"{where}: missing columns {missing} for {benchmark} (found: {found}); "
            f"the file needs the columns {list(required)}"
        )


# -- helpers ------------------------------------------------------------------------------------
def _is_local(ref: str) -> bool:
    return os.path.exists(os.path.expanduser(ref)) or ref.startswith((".", "/", "~")) \
        or ref.count("/") > 1


def _match(folder: Path, split: str) -> list[Path]:
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in EXTENSIONS
        and (p.stem == split or p.stem.startswith(f"{split}-"))
    )
    nested = folder / split
    if not files and nested.is_dir():
        files = sorted(p for p in nested.iterdir() if p.suffix.lower() in EXTENSIONS)
    return files


def _saved_dataset(path: Path, subset: str | None) -> Path | None:
    """A ``save_to_disk`` DatasetDict folder (inside the subset folder when there is one)."""
    if not path.is_dir():
        return None
    for folder in ([path / subset] if subset else []) + [path]:
        if (folder / "dataset_dict.json").exists():
            return folder
    return None


def _load_saved(folder: Path, split: str, benchmark: str) -> list[dict]:
    import datasets

    loaded = datasets.load_from_disk(str(folder))
    if split not in loaded:
        from autotrain_pl.data.validation import option_name

        raise AutotrainError(
            f"{folder}: no split {split!r} for {benchmark} (found: {', '.join(loaded)}); "
            f"set {option_name('split')}"
        )
    return loaded[split].to_list()


def _json_cell(value: str | None) -> Any:
    if value and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _load_hub(name: str, subset: str | None, split: str, benchmark: str) -> list[dict]:
    try:
        import datasets

        dataset = datasets.load_dataset(name, subset, split=split)
    except Exception as error:  # offline, unknown name or split: datasets raises many types
        from autotrain_pl.data.validation import option_name

        raise AutotrainError(
            f"could not load {benchmark} data {name!r} (subset={subset!r}, split={split!r}): "
            f"{_first_line(error)}; pass a local copy (parquet/jsonl/csv) as "
            f"{option_name('data_path')} when offline"
        ) from None
    return dataset.to_list()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
