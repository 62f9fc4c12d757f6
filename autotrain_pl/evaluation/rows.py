"""Evaluation data as one ``LoadedSource``, whether it is a file or rows in memory.

``Evaluator.run()`` reads ``data_path``; ``Evaluator.evaluate(rows)`` takes the rows themselves.
Both become the same ``data.LoadedSource``, so perplexity (which tokenizes the source with the
training encoder) and generation (which needs ``Conversation`` records) read one thing the same
way, and a row means the same in a file and in a list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autotrain_pl.errors import AutotrainError

#: How rows given in memory are named in messages (``<in-memory rows> row 3``).
IN_MEMORY = "<in-memory rows>"


def in_memory_source(rows: Any, limit: int | None = None, column_mapping=None):
    """A ``LoadedSource`` of in-memory rows.

    Args:
        rows: a ``datasets.Dataset``, or a list whose items are row dicts in any row format
            (``{"messages": [...]}``, ``{"prompt": .., "completion": ..}``...), message lists
            (``[{"role": "user", ...}, ...]`` or ``Message`` objects) or ``Conversation`` objects
            (their metadata, e.g. ``reference``, becomes columns).
        limit: keep the first ``limit`` rows.
        column_mapping: rename columns ``{old: new}`` before the row format is detected.
    """
    import datasets

    from autotrain_pl.data.reading import apply_column_mapping
    from autotrain_pl.data.sources import LoadedSource, RowLocator

    if isinstance(rows, datasets.Dataset):
        dataset = rows
    elif isinstance(rows, Sequence) and not isinstance(rows, str | bytes):
        dataset = datasets.Dataset.from_list([_row(item, index) for index, item in
                                              enumerate(rows)])
    else:
        raise AutotrainError(
            f"Evaluator.evaluate got a {type(rows).__name__}; pass a list of rows (dicts, message "
            "lists or Conversations) or a datasets.Dataset"
        )
    if len(dataset) == 0:
        raise AutotrainError("Evaluator.evaluate got no rows; pass at least one")
    if limit is not None and limit < len(dataset):
        dataset = dataset.select(range(limit))
    return apply_column_mapping(LoadedSource(dataset, RowLocator(IN_MEMORY)), column_mapping)


def _row(item: Any, index: int) -> dict[str, Any]:
    from autotrain_pl.rendering import Conversation, Message

    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, Conversation):
        return {"messages": [m.to_dict() for m in item.messages], **item.metadata}
    if isinstance(item, Sequence) and not isinstance(item, str | bytes) and all(
        isinstance(m, Mapping | Message) for m in item
    ):
        return {"messages": [m.to_dict() if isinstance(m, Message) else dict(m) for m in item]}
    raise AutotrainError(
        f"{IN_MEMORY} row {index} is a {type(item).__name__}; a row is a dict (e.g. "
        '{"messages": [...]}), a list of messages or a Conversation'
    )


def source_records(source, row_format: str = "auto") -> list:
    """Validated records of a loaded source, one per row, at least one (``data.load_conversations``
    for a source that is already loaded)."""
    from autotrain_pl.data.reading import source_records as read_records
    from autotrain_pl.data.validation import check_not_empty

    records = read_records(source, row_format)
    check_not_empty(len(records), source.locator.name)
    return records
