"""Preference pairs for ``ChatDataModule``, laid out for one forward pass per batch.

``PairEncoding`` is the ``data.ExampleEncoding`` of the preference objectives and of reward
models: the data module's own preference encoding (prompt rendered once, bad pairs dropped or
refused) and batches from ``data.pair_batches.PairCollator``. For objectives with a reference it
adds an ``example_id`` and a ``cache_key`` (a fingerprint of the encoded rows) that index the
reference log-probability cache.

``UnpairedEncoding`` does the same for KTO's unpaired feedback. The second completion of each
example is the completion of the example before it in the same data (cyclically): a mismatched
prompt and completion, whose log-ratio estimates the KL term. The partner is fixed when the data
is encoded, as TRL does, so its reference value can be cached like any other; unlike TRL, the
packed layout scores it in the same forward pass as the matched completion.
"""

from __future__ import annotations

import hashlib
from array import array
from typing import Any

from autotrain_pl.data.example_encoding import ExampleEncoding
from autotrain_pl.data.pair_batches import PairCollator, check_pair_layout
from autotrain_pl.errors import AutotrainError

_PAIR_COLUMNS = ("prompt_ids", "chosen_ids", "chosen_weights", "rejected_ids",
                 "rejected_weights")
_UNPAIRED_COLUMNS = ("prompt_ids", "completion_ids", "completion_weights", "kl_ids",
                     "kl_weights")


def pairs_fingerprint(dataset, columns: tuple[str, ...] = _PAIR_COLUMNS) -> str:
    """SHA-256 of the encoded examples, in order: names their reference cache."""
    digest = hashlib.sha256()
    for chunk in dataset.select_columns(list(columns)).iter(batch_size=1024):
        for values in zip(*(chunk[c] for c in columns), strict=True):
            for column, value in zip(columns, values, strict=True):
                digest.update(array("f" if column.endswith("weights") else "i", value).tobytes())
            digest.update(b"|")
    return digest.hexdigest()


class PairEncoding(ExampleEncoding):
    """Preference rows as pairs for one forward pass (see module docstring).

    Args:
        layout: ``packed`` or ``concatenated`` (``data.pair_batches``).
        cache_index: add ``example_id`` and ``cache_key`` (False where nothing is cached: a
            reward model, a reference-free loss).

    ``encoded`` maps each source's fingerprint to its encoded rows (a ``valid_fraction`` split
    shares its source's), which lay out the reference cache.
    """

    #: ``ChatDataModule.kind`` of the rows, the encoding mode, and the two completions.
    kind, first, second = "preference", "chosen", "rejected"
    columns = _PAIR_COLUMNS

    def __init__(self, layout: str = "packed", cache_index: bool = True) -> None:
        check_pair_layout(layout, "model.pair_layout")
        self.layout = layout
        self.cache_index = cache_index
        self.encoded: dict[str, Any] = {}

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.layout == self.layout
                and other.cache_index == self.cache_index)

    __hash__ = None  # type: ignore[assignment]

    def collator(self, datamodule) -> PairCollator:
        return PairCollator(datamodule.pad_token_id, self.layout, datamodule.pad_to_multiple_of,
                            first=self.first, second=self.second)

    def check_kind(self, datamodule, source) -> None:
        if datamodule.kind != self.kind:
            raise AutotrainError(
                f"{source.locator.name} does not hold preference pairs; preference training needs "
                "prompt/chosen/rejected rows (strings or message lists) or two conversations "
                "that share their opening turns; rename columns with "
                "data.init_args.column_mapping"
            )

    def encode(self, datamodule, source, split: str):
        self.check_kind(datamodule, source)
        dataset = self.with_second_completion(datamodule.encode_rows(source, self.kind, split))
        if not self.cache_index:
            return dataset
        fingerprint = pairs_fingerprint(dataset, self.columns)
        dataset = dataset.add_column("example_id", list(range(len(dataset))))
        dataset = dataset.add_column("cache_key", [fingerprint] * len(dataset))
        self.encoded[fingerprint] = dataset
        return dataset

    def with_second_completion(self, dataset):
        """The encoded rows, with the second completion added where the rows lack one."""
        return dataset


class UnpairedEncoding(PairEncoding):
    """KTO's labelled completions, each with a mismatched one for the KL term (module
    docstring)."""

    kind, first, second = "unpaired_preference", "completion", "kl"
    columns = _UNPAIRED_COLUMNS

    def check_kind(self, datamodule, source) -> None:
        if datamodule.kind != self.kind:
            raise AutotrainError(
                f"{source.locator.name} does not hold unpaired feedback; KTO needs prompt/"
                "completion/label rows (label true for a desirable completion); rename columns "
                "with data.init_args.column_mapping"
            )

    def with_second_completion(self, dataset):
        if len(dataset) < 2:
            raise AutotrainError("KTO needs at least 2 examples: each borrows another's "
                                 "completion to estimate the KL term")
        ids, weights = dataset["completion_ids"], dataset["completion_weights"]
        dataset = dataset.add_column("kl_ids", ids[-1:] + ids[:-1])
        return dataset.add_column("kl_weights", weights[-1:] + weights[:-1])
