"""How an objective with its own kind of example plugs into ``ChatDataModule``.

``ChatDataModule`` turns rows into SFT, preference or generation examples itself. An objective
whose examples differ (distillation's teacher/student pairs) implements ``EncodingProvider``:
its ``example_encoding()`` returns an ``ExampleEncoding``, and the data module, attached to the
same trainer, encodes its splits and collates its batches with it. The data module asks in its
own ``setup``, which Lightning runs before the objective's, so the data is encoded once, the way
the objective needs, whatever data module class the config names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import datasets

    from autotrain_pl.data.datamodule import ChatDataModule
    from autotrain_pl.data.sources import LoadedSource


class ExampleEncoding(ABC):
    """Rows to examples and examples to batches, for every split but ``predict``.

    Equal encodings (``==``) give equal datasets: the data module re-encodes only when a
    different one arrives.
    """

    #: Whether packed rows (``packing: true``) can carry these examples.
    supports_packing: bool = False

    @abstractmethod
    def encode(self, datamodule: ChatDataModule, source: LoadedSource,
               split: str) -> datasets.Dataset:
        """Encode one split's rows; record ``datamodule.stats[split]``."""

    @abstractmethod
    def collator(self, datamodule: ChatDataModule) -> Callable[[list[dict[str, Any]]], dict]:
        """The collate function of this encoding's batches."""


@runtime_checkable
class EncodingProvider(Protocol):
    """A LightningModule that wants its data encoded its own way."""

    def example_encoding(self) -> ExampleEncoding | None:
        """The encoding for the data, or None for the data module's own."""
