"""Read a source into validated records: the shared front half of every data pipeline.

Training goes on to tokenize (``data.encoding``); evaluation, distillation and RL code call
:func:`load_conversations` to get the same validated ``Conversation``/``Preference`` records.
"""

from __future__ import annotations

from collections.abc import Mapping

from autotrain_pl.data.formats import Record, RowFormat, detect_row_format, to_record
from autotrain_pl.data.sources import LoadedSource, load_source
from autotrain_pl.data.validation import RowError, check_not_empty, located, option_name
from autotrain_pl.errors import AutotrainError


def apply_column_mapping(source: LoadedSource, mapping: Mapping[str, str] | None) -> LoadedSource:
    """Rename columns ``{old: new}`` before the row format is detected."""
    if not mapping:
        return source
    columns = source.dataset.column_names
    found = ", ".join(columns)
    # A source already in the target schema (e.g. a validation file) needs no renaming.
    mapping = {old: new for old, new in mapping.items() if old in columns or new not in columns}
    option = option_name("column_mapping")
    for old, new in mapping.items():
        if old not in columns:
            raise AutotrainError(
                f"{source.locator.name}: {option} renames {old!r}, but there is no such "
                f"column (found: {found}); fix {option}"
            )
        if new in columns and new not in mapping:
            raise AutotrainError(
                f"{source.locator.name}: {option} renames {old!r} to {new!r}, which already "
                f"exists (found: {found}); map the existing {new!r} column away first"
            )
    dataset = source.dataset.rename_columns(dict(mapping))
    return LoadedSource(dataset, source.locator, source.splits)


def read_source(
    ref: str,
    *,
    split: str | None = None,
    subset: str | None = None,
    column_mapping: Mapping[str, str] | None = None,
    max_samples: int | None = None,
) -> LoadedSource:
    """Load a source, rename its columns and keep at most ``max_samples`` leading rows."""
    source = apply_column_mapping(load_source(ref, split=split, subset=subset), column_mapping)
    if max_samples is not None and max_samples < len(source.dataset):
        source = LoadedSource(
            source.dataset.select(range(max_samples)), source.locator, source.splits
        )
    return source


def source_format(source: LoadedSource, row_format: str = "auto") -> RowFormat:
    """The row format of a loaded source (override or auto-detected)."""
    return detect_row_format(source.dataset.column_names, source.locator.name, row_format)


def load_conversations(
    path: str,
    *,
    row_format: str = "auto",
    column_mapping: Mapping[str, str] | None = None,
    split: str | None = None,
    subset: str | None = None,
    max_samples: int | None = None,
) -> list[Record]:
    """Validated records of a source, one per row, in order.

    Returns ``Conversation`` (with extra columns such as ``reference`` in ``metadata``),
    ``Preference``, or ``TextDocument`` records depending on the row format. Conversations need
    not end with an assistant message (RL and eval prompts usually do not).

    Raises:
        AutotrainError: the first bad row, naming its file, line or row, and field.
    """
    source = read_source(
        path, split=split, subset=subset, column_mapping=column_mapping, max_samples=max_samples
    )
    records = source_records(source, row_format)
    check_not_empty(len(records), source.locator.name)
    return records


def source_records(source: LoadedSource, row_format: str = "auto") -> list[Record]:
    """Validated records of a source that is already loaded, one per row (maybe none).

    Raises:
        AutotrainError: the first bad row, naming its file, line or row, and field.
    """
    spec = source_format(source, row_format)
    records: list[Record] = []
    for index, row in enumerate(source.dataset):
        try:
            records.append(to_record(row, spec))
        except RowError as err:
            raise located(source.locator.where(index), err) from None
    return records
