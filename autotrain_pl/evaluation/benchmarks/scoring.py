"""Log-likelihood of answer continuations given a prompt: the core of multiple-choice scoring.

Tokenization mirrors lm-evaluation-harness v0.4 (``HFLM._encode_pair``): trailing whitespace of
the context moves to the front of the continuation, ``context + continuation`` is encoded as one
string, the context is encoded alone, and the continuation tokens are the joint encoding minus
the first ``len(context_ids)`` tokens. The model input is then ``context_ids + continuation_ids``,
so where a tokenizer merges across the boundary the input is exactly what the harness feeds.
No BOS token is added (the harness default, ``add_bos_token=False``) unless asked for.

Because the context ids do not depend on the choice, every choice of a question shares them.
The default ``shared_context`` method therefore runs the contexts of several questions once
(left-padded, with the KV cache), copies each question's cache to its choices, and runs only the
continuation tokens on top. The LM head runs only where a continuation token is predicted. For
single-token choices (MMLU's `` A``/`` B``...) the second pass is skipped entirely.

Methods (same numbers up to float rounding, tested against each other):

- ``shared_context``: contexts once per question, choices on the expanded KV cache (fastest).
- ``batched``: one right-padded row per (question, choice), several questions per forward;
  what the harness does with ``batch_size > 1``.
- ``naive``: one forward per choice with full-vocabulary logits; the reference loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.cache import cache_argument
from autotrain_pl.training.tokens import plain_lm_parts

SCORING_METHODS = ("shared_context", "batched", "naive")


@dataclass(frozen=True)
class EncodedQuestion:
    """Token ids of one question: the shared context and one continuation per choice."""

    context_ids: list[int]
    continuation_ids: list[list[int]]


def encode_pair(tokenizer, context: str, continuation: str, add_bos_token: bool = False
                ) -> tuple[list[int], list[int]]:
    """Context and continuation ids exactly as the harness's ``_encode_pair`` splits them."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    bos = tokenizer.bos_token_id
    prefix = [bos] if add_bos_token and bos is not None else []
    if not context:  # the harness predicts the first token from a prefix (BOS, else EOS) token
        start = bos if bos is not None else tokenizer.eos_token_id
        return [start], list(tokenizer.encode(continuation, add_special_tokens=False))
    whole = list(tokenizer.encode(context + continuation, add_special_tokens=False))
    context_ids = list(tokenizer.encode(context, add_special_tokens=False))
    return prefix + context_ids, whole[len(context_ids):]


def encode_question(tokenizer, context: str, continuations: Sequence[str],
                    add_bos_token: bool = False) -> EncodedQuestion:
    """Encode one context with each of its continuations (the context ids are shared)."""
    pairs = [encode_pair(tokenizer, context, c, add_bos_token) for c in continuations]
    return EncodedQuestion(pairs[0][0], [cont for _, cont in pairs])


class LoglikelihoodScorer:
    """Sum of log-probabilities of each continuation given its context, batched.

    Args:
        model: a causal LM (``transformers`` or peft-wrapped), already on its device.
        batch_size: questions per forward pass (all their choices go in the same pass).
        method: ``shared_context`` (default), ``batched`` or ``naive`` (see module docstring).
        max_length: longest input in tokens; longer contexts are cut on the left, as the
            harness does. Default: the model's ``max_position_embeddings``.
    """

    def __init__(self, model, *, batch_size: int = 8, method: str = "shared_context",
                 max_length: int | None = None) -> None:
        if method not in SCORING_METHODS:
            raise AutotrainError(
                f"scoring method {method!r} is unknown; use one of {SCORING_METHODS}"
            )
        if batch_size < 1:
            raise AutotrainError(f"batch_size={batch_size} must be a positive integer")
        self.model = model
        self.batch_size = batch_size
        self.method = method
        config = getattr(model, "config", None)
        self.max_length = max_length or getattr(config, "max_position_embeddings", None) or 2048
        self.decoder, self.head = plain_lm_parts(model) or (None, None)
        self.device = next(model.parameters()).device
        scorer = self.decoder if self.decoder is not None else model
        self._cache_kwarg = cache_argument(scorer.forward)

    @torch.inference_mode()
    def score(self, questions: Sequence[EncodedQuestion]) -> list[list[float]]:
        """Per-question lists of per-choice log-likelihoods, in input order."""
        questions = [self._truncate(q) for q in questions]
        if self.method == "naive":
            return [[self._naive_one(q.context_ids, c) for c in q.continuation_ids]
                    for q in questions]
        # Longest first, so each batch holds similar lengths (little padding).
        order = sorted(range(len(questions)), key=lambda i: -_total_length(questions[i]))
        results: list[list[float]] = [[] for _ in questions]
        run = self._shared_batch if self.method == "shared_context" else self._padded_batch
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for index, scores in zip(chunk, run([questions[i] for i in chunk]), strict=True):
                results[index] = scores
        return results

    # -- methods ----------------------------------------------------------------------------
    def _naive_one(self, context: list[int], continuation: list[int]) -> float:
        if not continuation:
            return 0.0
        ids = torch.tensor([context + continuation[:-1]], device=self.device)
        logits = self.model(input_ids=ids).logits[0, len(context) - 1:].float()
        targets = torch.tensor(continuation, device=self.device)
        return float(logits.log_softmax(-1).gather(-1, targets[:, None]).sum())

    def _padded_batch(self, questions: list[EncodedQuestion]) -> list[list[float]]:
        rows = [(q.context_ids, c) for q in questions for c in q.continuation_ids]
        sequences = [ctx + cont[:-1] for ctx, cont in rows]
        ids, mask = _pad(sequences, self.device)
        row_index, positions, targets = [], [], []
        for r, (ctx, cont) in enumerate(rows):
            for j, token in enumerate(cont):
                row_index.append(r)
                positions.append(len(ctx) - 1 + j)
                targets.append(token)
        hidden = self._hidden(ids, mask, None, None)
        token_lp = self._token_logprobs(hidden, row_index, positions, targets)
        sums = _sum_by_row(token_lp, row_index, len(rows), self.device)
        return _regroup(sums, questions)

    def _shared_batch(self, questions: list[EncodedQuestion]) -> list[list[float]]:
        from transformers import DynamicCache

        contexts = [q.context_ids for q in questions]
        width = max(len(c) for c in contexts)
        ids, mask = _pad(contexts, self.device, left=True)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        cache = DynamicCache()
        hidden = self._hidden(ids, mask, positions, cache)
        # The last context position predicts every choice's first token.
        rows = [(q, c) for q, question in enumerate(questions) for c in question.continuation_ids]
        first_rows = [q for q, cont in rows if cont]
        first_lp = self._token_logprobs(
            hidden, first_rows, [width - 1] * len(first_rows), [cont[0] for _, cont in rows if cont]
        )
        sums = torch.zeros(len(rows), device=self.device, dtype=torch.float32)
        has_first = torch.tensor([bool(cont) for _, cont in rows], device=self.device)
        sums[has_first] = first_lp
        longer = [r for r, (_, cont) in enumerate(rows) if len(cont) > 1]
        if longer:
            sums[torch.tensor(longer, device=self.device)] += self._continue(
                [rows[r] for r in longer], questions, mask, cache
            )
        return _regroup(sums, questions)

    def _continue(self, rows: list[tuple[int, list[int]]], questions: list[EncodedQuestion],
                  context_mask: Tensor, cache) -> Tensor:
        """Run tokens 1..n-1 of each continuation on its question's copy of the context cache."""
        source = torch.tensor([q for q, _ in rows], device=self.device)
        cache.batch_select_indices(source)
        inputs = [cont[:-1] for _, cont in rows]
        ids, cont_mask = _pad(inputs, self.device)
        mask = torch.cat([context_mask[source], cont_mask], dim=1)
        starts = torch.tensor([len(questions[q].context_ids) for q, _ in rows], device=self.device)
        positions = starts[:, None] + torch.arange(ids.shape[1], device=self.device)[None]
        hidden = self._hidden(ids, mask, positions, cache)
        row_index, position_index, targets = [], [], []
        for r, (_, cont) in enumerate(rows):
            for j, token in enumerate(cont[1:]):
                row_index.append(r)
                position_index.append(j)
                targets.append(token)
        token_lp = self._token_logprobs(hidden, row_index, position_index, targets)
        return _sum_by_row(token_lp, row_index, len(rows), self.device)

    # -- model plumbing -------------------------------------------------------------------
    def _hidden(self, ids: Tensor, mask: Tensor, positions: Tensor | None, cache) -> Tensor:
        """Final hidden states (plain LM head) or logits (any other head)."""
        kwargs: dict = {"input_ids": ids, "attention_mask": mask}
        if positions is not None:
            kwargs["position_ids"] = positions
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        kwargs["use_cache"] = cache is not None
        if self.decoder is not None:
            return self.decoder(**kwargs).last_hidden_state
        return self.model(**kwargs).logits

    def _token_logprobs(self, hidden: Tensor, rows: list[int], positions: list[int],
                        targets: list[int]) -> Tensor:
        if not rows:
            return torch.zeros(0, device=self.device)
        r = torch.tensor(rows, device=self.device)
        p = torch.tensor(positions, device=self.device)
        t = torch.tensor(targets, device=self.device)
        selected = hidden[r, p]
        logits = self.head(selected) if self.decoder is not None else selected
        return logits.float().log_softmax(-1).gather(-1, t[:, None]).squeeze(-1)

    def _truncate(self, question: EncodedQuestion) -> EncodedQuestion:
        longest = max((len(c) for c in question.continuation_ids), default=0)
        room = self.max_length + 1 - longest  # the last continuation token is never an input
        if len(question.context_ids) <= room:
            return question
        if room < 1:
            from autotrain_pl.data.validation import option_name

            raise AutotrainError(
                f"a choice of {longest} tokens does not fit "
                f"{option_name('max_length')}={self.max_length}; raise it or shorten the choices"
            )
        return EncodedQuestion(question.context_ids[-room:], question.continuation_ids)


def _pad(sequences: Sequence[Sequence[int]], device, left: bool = False) -> tuple[Tensor, Tensor]:
    width = max((len(s) for s in sequences), default=0)
    ids = torch.zeros(len(sequences), max(width, 1), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        if seq:
            span = slice(width - len(seq), width) if left else slice(0, len(seq))
            ids[row, span] = torch.tensor(list(seq))
            mask[row, span] = 1
    return ids.to(device), mask.to(device)


def _sum_by_row(values: Tensor, rows: list[int], count: int, device) -> Tensor:
    out = torch.zeros(count, device=device, dtype=torch.float32)
    if rows:
        out.index_add_(0, torch.tensor(rows, device=device), values.float())
    return out


def _regroup(sums: Tensor, questions: Sequence[EncodedQuestion]) -> list[list[float]]:
    flat = sums.double().cpu().tolist()
    out, start = [], 0
    for question in questions:
        count = len(question.continuation_ids)
        out.append(flat[start:start + count])
        start += count
    return out


def _total_length(question: EncodedQuestion) -> int:
    return len(question.context_ids) + max((len(c) for c in question.continuation_ids), default=0)
