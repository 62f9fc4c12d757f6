"""BERTScore: greedy cosine matching of contextual token embeddings (idf off, no rescaling).

Why not torchmetrics' `BERTScore` class directly: in torchmetrics 1.9 it sorts predictions and
references by length separately and undoes the sort with the wrong permutation, so it can score a
prediction against another example's reference (seen with 3 pairs of different lengths; see
Lightning-AI/torchmetrics#2728 and #2347). This module
keeps torchmetrics' recipe (last hidden layer by default, L2-normalized embeddings, special
tokens excluded, precision = mean over prediction tokens of the best cosine with a reference
token, recall the other way round, F1 their harmonic mean) and its DDP design (token ids are
the state, gathered with `cat`), but embeds pairs in their own order. The tests check it
against torchmetrics' functional `bert_score` called one pair at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics.base import TextMetric

DEFAULT_BERTSCORE_MODEL = "roberta-large"


def load_bertscore_model(model_name_or_path: str) -> tuple[Any, Any]:
    """Load tokenizer and encoder, turning "not available" into an `AutotrainError`.

    A missing model must fail loudly: a BERTScore of 0 would look like a terrible model.
    """
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
        model = AutoModel.from_pretrained(model_name_or_path)
    except (OSError, ValueError) as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise AutotrainError(
            f"bertscore: cannot load model_name_or_path={model_name_or_path!r} ({first_line}); "
            f"BERTScore needs a local model dir or a reachable/cached hub id: {_model_hint()}"
        ) from error
    return tokenizer, model


def _model_hint() -> str:
    """How the running command sets the BERTScore model (``aitrain eval``: its flag)."""
    from autotrain_pl.data.validation import option_is_spelled, option_setting

    setting = option_setting(
        "metric_kwargs", {"bertscore": {"model_name_or_path": "/path/to/roberta-large"}}
    )
    if option_is_spelled("metric_kwargs"):
        return f"set {setting}"
    return (
        "get_metric('bertscore', model_name_or_path='/path/to/roberta-large'), or "
        f"{setting} where metrics are configured"
    )


class BERTScoreMetric(Metric):
    """Mean BERTScore precision, recall and F1 over all (prediction, references) pairs.

    With several references per prediction each of P, R and F1 is the maximum over them, as in
    the `bert_score` package.

    Args:
        model_name_or_path: Local model directory or hub id of an encoder (any `AutoModel`).
        num_layers: Hidden layer to use (index into `hidden_states`); default the last layer.
        max_length: Longest input in tokens; longer texts are truncated. The state keeps about
            `5 * max_length` bytes per stored text, so keep it modest for large eval sets.
        batch_size: Pairs per forward pass in `compute()`.
        model: An already loaded model (then `tokenizer` is required too); skips loading.
        tokenizer: The tokenizer matching `model`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    preds_input_ids: list[Tensor]
    preds_score_mask: list[Tensor]
    target_input_ids: list[Tensor]
    target_score_mask: list[Tensor]
    group_start: list[Tensor]

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_BERTSCORE_MODEL,
        num_layers: int | None = None,
        max_length: int = 512,
        batch_size: int = 64,
        model: torch.nn.Module | None = None,
        tokenizer: Any | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (model is None) != (tokenizer is None):
            raise AutotrainError("bertscore: pass both model and tokenizer, or neither")
        if model is None:
            tokenizer, model = load_bertscore_model(model_name_or_path)
        model.eval()  # dropout off: the same text must always get the same embeddings
        self.model_name_or_path = model_name_or_path
        self.tokenizer = tokenizer
        # Kept out of the module tree on purpose: a registered submodule would put the encoder's
        # weights into every Lightning checkpoint that holds this metric. Moved in `compute()`.
        self.__dict__["encoder"] = model
        self.num_layers = num_layers
        self.batch_size = batch_size
        limits = [max_length, getattr(tokenizer, "model_max_length", max_length)]
        limits.append(
            getattr(getattr(model, "config", None), "max_position_embeddings", max_length)
        )
        self.max_length = int(min(limits))
        # Padded to max_length so that batches (and ranks) concatenate; the id 0 under a zero
        # mask is never looked at.
        for side in ("preds", "target"):
            self.add_state(f"{side}_input_ids", [], dist_reduce_fx="cat")
            self.add_state(f"{side}_score_mask", [], dist_reduce_fx="cat")
        # 1 where a new prediction's group of references starts; groups stay contiguous under cat.
        self.add_state("group_start", [], dist_reduce_fx="cat")

    def _tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        encoded = self.tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        attention = encoded["attention_mask"].bool()
        score_mask = attention & ~encoded["special_tokens_mask"].bool()
        # 0 = padding, 1 = special token (seen by the model, not scored), 2 = scored token.
        mask = attention.to(torch.int8) + score_mask.to(torch.int8)
        return encoded["input_ids"].to(torch.int32), mask

    def update(self, preds: Sequence[str], target: Sequence[Sequence[str]]) -> None:
        """Tokenize and store the pairs; embedding happens once, in `compute()`."""
        flat_preds, flat_refs, starts = [], [], []
        for pred, refs in zip(preds, target, strict=True):
            for index, ref in enumerate(refs):
                flat_preds.append(pred)
                flat_refs.append(ref)
                starts.append(index == 0)
        if not flat_preds:
            return
        for side, texts in (("preds", flat_preds), ("target", flat_refs)):
            ids, mask = self._tokenize(texts)
            getattr(self, f"{side}_input_ids").append(ids.to(self.device))
            getattr(self, f"{side}_score_mask").append(mask.to(self.device))
        self.group_start.append(torch.tensor(starts, dtype=torch.int8, device=self.device))

    @torch.no_grad()
    def _embed(self, input_ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """L2-normalized embeddings `[n, len, dim]` and the scored-token mask `[n, len]`.

        Trimmed to the longest text of the batch, so padding to `max_length` costs no compute.
        """
        length = max(int((mask > 0).sum(1).max()), 1)
        ids, mask = input_ids[:, :length].long(), mask[:, :length]
        output = self.encoder(
            input_ids=ids, attention_mask=(mask > 0).long(), output_hidden_states=True
        )
        layer = output.hidden_states[self.num_layers if self.num_layers is not None else -1]
        return torch.nn.functional.normalize(layer.float(), dim=-1), mask == 2

    def _pair_scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """Precision, recall and F1 of every stored (prediction, reference) pair, in order."""
        self.encoder.to(self.device)
        pred_ids, pred_masks = _concat(self.preds_input_ids), _concat(self.preds_score_mask)
        ref_ids, ref_masks = _concat(self.target_input_ids), _concat(self.target_score_mask)
        precisions, recalls = [], []
        for start in range(0, pred_ids.shape[0], self.batch_size):
            window = slice(start, start + self.batch_size)
            pred_emb, pred_mask = self._embed(pred_ids[window], pred_masks[window])
            ref_emb, ref_mask = self._embed(ref_ids[window], ref_masks[window])
            cosine = torch.einsum("npd,nrd->npr", pred_emb, ref_emb)
            best_for_pred = cosine.masked_fill(~ref_mask[:, None, :], -2.0).amax(dim=2)
            best_for_ref = cosine.masked_fill(~pred_mask[:, :, None], -2.0).amax(dim=1)
            precisions.append(_masked_mean(best_for_pred, pred_mask))
            recalls.append(_masked_mean(best_for_ref, ref_mask))
        precision, recall = torch.cat(precisions), torch.cat(recalls)
        f1 = torch.nan_to_num(2 * precision * recall / (precision + recall), nan=0.0)
        return precision, recall, f1

    def compute(self) -> dict[str, Tensor]:
        """Mean precision, recall and f1 (NaN when nothing was seen)."""
        # After a DDP sync the list states are single tensors; before it, lists of tensors.
        starts = _concat(self.group_start)
        if starts.numel() == 0:
            nan = torch.tensor(float("nan"), device=self.device)
            return {"precision": nan, "recall": nan, "f1": nan}
        precision, recall, f1 = self._pair_scores()
        groups = torch.cumsum(starts.long(), dim=0) - 1
        num_groups = int(groups[-1]) + 1
        out = {}
        for key, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            best = torch.full((num_groups,), float("-inf"), device=values.device)
            best = best.scatter_reduce(0, groups.to(values.device), values, reduce="amax")
            out[key] = best.mean()
        return out


def _concat(state: list[Tensor] | Tensor) -> Tensor:
    """One tensor from a list state, whether or not a sync already concatenated it."""
    if isinstance(state, Tensor):
        return state
    return dim_zero_cat(state) if state else torch.empty(0)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` where `mask` is true, per row; 0 for rows with no scored token.

    A token with nothing to match on the other side got -2 (below any cosine); count it as 0.
    """
    values = torch.where(values < -1.5, torch.zeros_like(values), values)
    total = torch.where(mask, values, torch.zeros_like(values)).sum(-1)
    return total / mask.sum(-1).clamp(min=1)


def bertscore(
    model_name_or_path: str = DEFAULT_BERTSCORE_MODEL,
    num_layers: int | None = None,
    max_length: int = 512,
    batch_size: int = 64,
) -> TextMetric:
    """BERTScore as a `TextMetric` reporting `bertscore_precision/_recall/_f1`.

    The model is loaded here, so a missing model fails when the metric is built, not after a
    whole generation pass. Loading never downloads when `HF_HUB_OFFLINE=1`.
    """
    metric = BERTScoreMetric(
        model_name_or_path=model_name_or_path,
        num_layers=num_layers,
        max_length=max_length,
        batch_size=batch_size,
    )
    return TextMetric("bertscore", metric)
