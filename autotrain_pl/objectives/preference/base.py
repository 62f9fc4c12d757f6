"""What the preference objectives share: pairs scored in one forward pass, and the reference.

``PairObjective`` is the base of ``DPOModule`` and ``KTOModule``. Its data come through
``ChatDataModule`` in its own encoding (``objectives.preference.data``): every example is a prompt
with two completions (chosen and rejected; or, for KTO, the labelled completion and a mismatched
one for the KL estimate), laid out so that ONE forward pass scores both and the LM head runs only
at completion tokens (``data.pair_batches``). ``pair_scores`` is the hook a subclass or a
researcher overrides to score pairs another way.

The reference is a ``training.FrozenModel``: a frozen copy of ``ref_model`` (default: the
policy's own starting point), or, when LoRA is trained and no ``ref_model`` is given, the policy
with its adapter disabled: no second copy in memory. Reference-free objectives load none.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.preference.data import PairEncoding
from autotrain_pl.objectives.preference.reference import ReferenceLogps
from autotrain_pl.training import FrozenModel
from autotrain_pl.training.pair_scores import PairScores, pair_selection, pair_sums


class PairObjective(ObjectiveModule):
    """Base of the objectives that score two completions of a prompt (module docstring).

    Args:
        ref_model: the reference model (default: the policy's starting point).
        precompute_ref_log_probs: score every example with the reference once before training
            and keep the values on disk (``ref_cache_dir``), named by a fingerprint of the data
            and the reference; later epochs and later runs never run the reference.
        ref_cache_dir: where precomputed reference values live (default: the package cache,
            ``$AUTOTRAIN_PL_CACHE/reference_logps``, so every run on the same data reuses them).
        pair_layout: ``packed`` (one row per example, the prompt encoded once) or
            ``concatenated`` (two rows, for attention implementations without 4-D masks).
        reference_free: load no reference (set by subclasses from their loss type).
        **kwargs: the shared options of ``ObjectiveModule`` (model, LoRA, optimizer, ...).
    """

    data_kind = "preference"

    def __init__(self, *args: Any, ref_model: str | None = None,
                 precompute_ref_log_probs: bool = False, ref_cache_dir: str | None = None,
                 pair_layout: str = "packed", reference_free: bool = False,
                 **kwargs: Any) -> None:
        # checks the layout before a model loads; only a reference needs examples indexed
        encoding = self.make_encoding(pair_layout, cache_index=not reference_free)
        if reference_free and (ref_model or precompute_ref_log_probs or ref_cache_dir):
            given = [n for n, v in (("ref_model", ref_model), ("precompute_ref_log_probs",
                     precompute_ref_log_probs), ("ref_cache_dir", ref_cache_dir)) if v]
            raise AutotrainError(
                f"{type(self).__name__}: the loss type is reference-free and loads no reference "
                f"model; remove model.{', model.'.join(given)} or use a type with a reference"
            )
        super().__init__(*args, **kwargs)
        self.encoding = encoding
        self.reference: ReferenceLogps | None = None
        if not reference_free:
            self.reference = ReferenceLogps(self._reference_model(ref_model),
                                            precompute_ref_log_probs, _cache_dir(ref_cache_dir))

    @staticmethod
    def make_encoding(layout: str, cache_index: bool = True) -> PairEncoding:
        """The data encoding of this objective's examples."""
        return PairEncoding(layout, cache_index)

    def _reference_model(self, ref_model: str | None) -> FrozenModel:
        hp = self.hparams
        if ref_model is None and hasattr(self.model, "disable_adapter"):
            return FrozenModel.adapter_disabled(self.model, hp.model_name_or_path)
        return FrozenModel.copy(ref_model or hp.model_name_or_path, dtype=hp.dtype,
                                attn_implementation=hp.attn_implementation,
                                trust_remote_code=hp.trust_remote_code)

    # -- data -----------------------------------------------------------------------------------
    def example_encoding(self) -> PairEncoding:
        """Examples laid out for one forward pass (``data.EncodingProvider``)."""
        return self.encoding

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.reference is None:
            return
        if self.tokenizer is not None:
            self.reference.frozen.min_vocab = len(self.tokenizer)
        if self.reference.precompute and isinstance(self.trainer.datamodule, ChatDataModule):
            self.reference.open_caches(self.trainer, self.encoding.encoded)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.reference is None or not self.reference.precompute:
            return
        datamodule = self.trainer.datamodule
        self.reference.fill(self.trainer, self.encoding.encoded,
                            self.encoding.collator(datamodule), self.pair_scores, self.device,
                            datamodule.eval_batch_size)

    # -- scoring --------------------------------------------------------------------------------
    def pair_scores(self, model, batch: Mapping[str, Any]) -> PairScores:
        """Sequence log-probabilities of both completions of each example under ``model``."""
        logprobs, _ = self.forward_logprobs(model, batch, selection=pair_selection(batch))
        return pair_sums(logprobs, batch)

    def reference_scores(self, batch: Mapping[str, Any]):
        """``(chosen, rejected)`` reference log-probabilities of a batch (cached or live)."""
        if self.reference is None:
            raise AutotrainError(f"{type(self).__name__} is reference-free: it has no reference")
        return self.reference(batch, self.pair_scores, self.device)

    # -- cache bookkeeping ----------------------------------------------------------------------
    def on_train_epoch_end(self) -> None:
        if self.reference is not None:
            self.reference.flush()

    def on_fit_end(self) -> None:
        if self.reference is not None:
            self.reference.flush()
        super().on_fit_end()


def _cache_dir(ref_cache_dir: str | None) -> Path:
    if ref_cache_dir:
        return Path(ref_cache_dir).expanduser()
    from autotrain_pl.models.builtin import cache_root

    return cache_root() / "reference_logps"
