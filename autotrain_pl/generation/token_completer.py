"""``TokenCompleter``: token ids in, sampled tokens with logprobs and a stop reason out.

Logprobs. ``TokenCompletion.logprobs`` are the RAW model logprobs: ``log_softmax`` of the logits
the model produced, before repetition penalty, temperature, top-k/top-p/min-p/typical filtering.
They equal a teacher-forced forward pass over ``prompt + tokens`` (what an RL importance ratio
compares against). They come from ``generate(output_logits=True, return_dict_in_generate=True)``:
``generate`` holds every step's float32 ``[rows, vocab]`` logits until it returns (steps x rows x
vocab x 4 bytes, the price of exactness), then they are reduced to one value per token and freed;
``return_logprobs=False`` skips all of it. ``processed_logprobs`` (opt-in) are
``log_softmax`` of the scores after all logits processors, i.e. of the distribution the token was
actually drawn from; filtered-out tokens would be ``-inf`` there. Beam search reorders rows every
step, so for beams the raw logprobs come from one teacher-forced forward pass instead.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation.sampling import SamplingConfig
from autotrain_pl.generation.stopping import (
    StopConditionCriteria,
    StopConditions,
    StopReason,
    finish_row,
)
from autotrain_pl.generation.streaming import stream_generation
from autotrain_pl.models.cache import cache_argument

DEFAULT_BATCH_SIZE = 32


@dataclass
class TokenCompletion:
    """One sampled completion.

    Attributes:
        tokens: generated token ids, ending with the stop token(s) when ``stop_reason`` is
            ``"eos"`` or ``"stop"``; nothing after the stop.
        logprobs: raw model logprob of each token in ``tokens`` (see module docstring); None when
            the completer was built with ``return_logprobs=False``.
        stop_reason: ``"eos"`` (EOS or the chat format's end of turn), ``"stop"`` (a
            ``SamplingConfig.stop`` entry) or ``"length"`` (``max_new_tokens`` reached).
        text: decoded ``tokens`` without the stop (a stop string is cut exactly once).
        processed_logprobs: logprobs after sampling processors, when requested.
        elapsed_s: wall time of the ``generate`` call that produced this completion.
    """

    tokens: list[int]
    logprobs: list[float] | None
    stop_reason: StopReason
    text: str
    processed_logprobs: list[float] | None = None
    elapsed_s: float = 0.0

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)


class TokenCompleter:
    """Samples completions of token-id prompts with ``model.generate`` and the KV cache.

    Args:
        model: a causal LM (``transformers`` or peft-wrapped).
        tokenizer: its tokenizer; pad falls back to EOS.
        renderer: the chat format; its end-of-turn sequences stop generation (reason ``"eos"``).
        return_logprobs: compute raw logprobs (costs a float32 copy of each step's logits).
        return_processed_logprobs: also compute logprobs after the sampling processors.
        batch_size: prompts per ``generate`` call when ``__call__`` gets many prompts.
    """

    def __init__(
        self,
        model,
        tokenizer,
        renderer=None,
        *,
        return_logprobs: bool = True,
        return_processed_logprobs: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.renderer = renderer
        self.return_logprobs = return_logprobs
        self.return_processed_logprobs = return_processed_logprobs
        self.batch_size = batch_size
        self.end_sequences = _end_sequences(model, tokenizer, renderer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise AutotrainError("the tokenizer has neither a pad nor an EOS token; set tokenizer.pad_token")
        self.pad_token_id = int(pad)

    # -- public API -----------------------------------------------------------------------
    def __call__(
        self, prompt_ids: Sequence[int] | Sequence[Sequence[int]], sampling: SamplingConfig | None = None
    ) -> list[TokenCompletion]:
        """Complete one prompt (a list of ids) or many (a list of lists).

        Returns ``num_return_sequences`` completions per prompt, prompt-major.
        """
        prompts = _as_prompt_list(prompt_ids)
        return self.batch_complete(prompts, sampling, batch_size=self.batch_size)

    def batch_complete(
        self,
        prompts: Sequence[Sequence[int]],
        sampling: SamplingConfig | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> list[TokenCompletion]:
        """Complete many prompts in left-padded batches; results come back in input order.

        Prompts are sorted by length first so each batch holds similar lengths and little
        padding. Returns ``num_return_sequences`` completions per prompt, prompt-major.
        """
        sampling = sampling or SamplingConfig()
        if batch_size < 1:
            raise AutotrainError(f"batch_size={batch_size} must be >= 1")
        prompts = [_check_prompt(i, p) for i, p in enumerate(prompts)]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        per_prompt = sampling.num_return_sequences
        results: list[list[TokenCompletion]] = [[] for _ in prompts]
        with _seeded(sampling.seed, self.device):
            for start in range(0, len(order), batch_size):
                indices = order[start : start + batch_size]
                completions = self.generate_batch([prompts[i] for i in indices], sampling)
                for offset, index in enumerate(indices):
                    results[index] = completions[offset * per_prompt : (offset + 1) * per_prompt]
        return [completion for group in results for completion in group]

    def stream_tokens(
        self, prompt_ids: Sequence[int], sampling: SamplingConfig | None = None
    ) -> Generator[str, None, TokenCompletion]:
        """Yield one prompt's completion as text chunks while it is generated.

        The generator returns the ``TokenCompletion`` (``StopIteration.value``, or
        ``x = yield from ...``); its text equals the chunks joined. Closing it early stops
        generation. See ``streaming.py``.
        """
        sampling = sampling or SamplingConfig()
        if sampling.num_return_sequences != 1 or sampling.is_beam_search:
            raise AutotrainError(
                "streaming produces one sequence; set sampling.num_return_sequences=1 and num_beams=1"
            )
        prompt = _check_prompt(0, prompt_ids)
        conditions = self.stop_conditions(sampling)

        def generate(streamer, cancel) -> TokenCompletion:
            with _seeded(sampling.seed, self.device):
                return self.generate_batch(
                    [prompt], sampling, streamer=streamer, stopping_criteria=[cancel]
                )[0]

        stop_strings = list(conditions.stop_strings) + [
            self.tokenizer.decode(list(s)) for s in conditions.multi_token_sequences()
        ]
        return stream_generation(generate, self.tokenizer,
                                 end_token_ids=conditions.single_token_ids(),
                                 stop_strings=stop_strings)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def stop_conditions(self, sampling: SamplingConfig) -> StopConditions:
        return StopConditions(
            end_sequences=self.end_sequences,
            stop_sequences=sampling.stop_token_sequences,
            stop_strings=sampling.stop_strings,
        )

    # -- one generate call ----------------------------------------------------------------
    def generate_batch(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingConfig, streamer=None,
        stopping_criteria: Sequence | None = None,
    ) -> list[TokenCompletion]:
        """One left-padded ``generate`` call; ``num_return_sequences`` results per prompt."""
        from transformers import StoppingCriteriaList

        input_ids, attention_mask = self._left_pad(prompts)
        prompt_length = input_ids.shape[1]
        conditions = self.stop_conditions(sampling)
        criteria = StoppingCriteriaList(stopping_criteria or [])
        stop_criteria = None
        if conditions.needs_criteria():
            stop_criteria = StopConditionCriteria(conditions, self.tokenizer, prompt_length)
            criteria.append(stop_criteria)
        generation_config = self._generation_config(sampling, conditions)
        start = time.perf_counter()
        with torch.inference_mode():
            shared = {}
            if sampling.num_return_sequences > 1 and not sampling.is_beam_search and \
                    streamer is None and prompt_length > 1:
                shared = self._shared_prompt_cache(input_ids, attention_mask,
                                                   sampling.num_return_sequences)
                input_ids, attention_mask = shared.pop("input_ids"), shared.pop("attention_mask")
                generation_config.num_return_sequences = 1
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=generation_config,
                stopping_criteria=criteria,
                streamer=streamer,
                **shared,
            )
            generated = output.sequences[:, prompt_length:]
            raw = processed = None
            if self.return_logprobs:
                if sampling.is_beam_search:
                    raw = self._teacher_forced_logprobs(output.sequences, attention_mask, sampling)
                else:
                    raw = _gather_logprobs(output.logits, generated)
            if self.return_processed_logprobs and not sampling.is_beam_search:
                processed = _gather_logprobs(output.scores, generated)
        elapsed = time.perf_counter() - start
        del output  # drops the per-step logits and the KV cache now
        rows = generated.tolist()
        raw_rows = raw.tolist() if raw is not None else None
        processed_rows = processed.tolist() if processed is not None else None
        string_stops = stop_criteria.string_stop_at if stop_criteria is not None else {}
        completions = []
        for row, tokens in enumerate(rows):
            done = finish_row(tokens, conditions, self.tokenizer, string_stops.get(row))
            completions.append(TokenCompletion(
                tokens=tokens[: done.end],
                logprobs=raw_rows[row][: done.end] if raw_rows is not None else None,
                stop_reason=done.stop_reason,
                text=done.text,
                processed_logprobs=processed_rows[row][: done.end] if processed_rows else None,
                elapsed_s=elapsed,
            ))
        return completions

    def _shared_prompt_cache(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                             copies: int) -> dict:
        """Encode each prompt ONCE for its ``copies`` samples: ``generate`` with
        ``num_return_sequences`` would expand the prompts first and encode every copy. The
        prompts but their last token fill a KV cache, which is repeated per copy; ``generate``
        then starts from the last prompt token, as it does after its own prefill."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        head, head_mask = input_ids[:, :-1], attention_mask[:, :-1]
        positions = (head_mask.cumsum(-1) - 1).clamp(min=0)
        name = cache_argument(self.model.forward)  # generate takes the same name
        self.model(input_ids=head, attention_mask=head_mask, position_ids=positions,
                   use_cache=True, logits_to_keep=1, **{name: cache})
        cache.batch_repeat_interleave(copies)
        return {"input_ids": input_ids.repeat_interleave(copies, dim=0),
                "attention_mask": attention_mask.repeat_interleave(copies, dim=0), name: cache}

    def _generation_config(self, sampling: SamplingConfig, conditions: StopConditions):
        config = sampling.to_generation_config()
        config.eos_token_id = conditions.single_token_ids() or None
        config.pad_token_id = self.pad_token_id
        config.return_dict_in_generate = True
        config.output_logits = self.return_logprobs and not sampling.is_beam_search
        config.output_scores = self.return_processed_logprobs and not sampling.is_beam_search
        model_defaults = getattr(self.model, "generation_config", None)
        if sampling.do_sample and sampling.min_p is None and getattr(model_defaults, "min_p", None):
            config.min_p = 0.0  # unset fields are filled from the model's defaults; keep it off
        return config

    def _left_pad(self, prompts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad on the left so every prompt ends at the same position, where decoding starts."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _teacher_forced_logprobs(
        self, sequences: torch.Tensor, prompt_mask: torch.Tensor, sampling: SamplingConfig
    ) -> torch.Tensor:
        """Raw logprobs of the generated part of ``sequences`` from one forward pass."""
        prompt_length = prompt_mask.shape[1]
        prompt_mask = prompt_mask.repeat_interleave(sampling.num_return_sequences, dim=0)
        generated = sequences[:, prompt_length:]
        mask = torch.cat([prompt_mask, torch.ones_like(generated)], dim=1)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(
            input_ids=sequences, attention_mask=mask, position_ids=position_ids,
            logits_to_keep=generated.shape[1] + 1,
        ).logits[:, :-1].float()
        return logits.gather(-1, generated[..., None]).squeeze(-1) - logits.logsumexp(-1)


def stream_tokens(
    completer: TokenCompleter, prompt_ids: Sequence[int], sampling: SamplingConfig | None = None
) -> Generator[str, None, TokenCompletion]:
    """``completer.stream_tokens(prompt_ids, sampling)``: yield text chunks, return the
    ``TokenCompletion``."""
    return completer.stream_tokens(prompt_ids, sampling)


def _gather_logprobs(step_logits: Sequence[torch.Tensor] | None, generated: torch.Tensor):
    """``log_softmax(step_logits[t])[row, generated[row, t]]`` as a ``[rows, steps]`` tensor."""
    if not step_logits:
        return None
    steps = min(len(step_logits), generated.shape[1])
    columns = []
    for t in range(steps):
        logits = step_logits[t].float()
        chosen = logits.gather(1, generated[:, t : t + 1]).squeeze(1)
        columns.append(chosen - logits.logsumexp(-1))
    out = torch.zeros(generated.shape, dtype=torch.float32, device=generated.device)
    if columns:
        out[:, :steps] = torch.stack(columns, dim=1)
    return out.cpu()


def _end_sequences(model, tokenizer, renderer) -> tuple[tuple[int, ...], ...]:
    """EOS ids of the tokenizer and the model's generation config, plus the format's stops."""
    sequences: list[tuple[int, ...]] = []
    eos_ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        eos_ids.append(int(tokenizer.eos_token_id))
    model_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if model_eos is not None:
        eos_ids += [int(t) for t in (model_eos if isinstance(model_eos, list | tuple) else [model_eos])]
    if renderer is not None:
        sequences += [tuple(int(t) for t in s) for s in renderer.stop_sequences() if s]
    sequences += [(t,) for t in eos_ids]
    return tuple(dict.fromkeys(sequences))  # unique, order kept


def _as_prompt_list(prompt_ids) -> list[list[int]]:
    if isinstance(prompt_ids, torch.Tensor):
        prompt_ids = prompt_ids.tolist()
    if not isinstance(prompt_ids, Sequence) or isinstance(prompt_ids, str) or not prompt_ids:
        raise AutotrainError("prompt_ids must be a non-empty list of token ids or of such lists")
    if isinstance(prompt_ids[0], int):
        return [list(prompt_ids)]
    return [list(p) for p in prompt_ids]


def _check_prompt(index: int, prompt: Sequence[int]) -> list[int]:
    if isinstance(prompt, str):
        raise AutotrainError(f"prompt {index} is a string; tokenize it (or use a MessageCompleter)")
    prompt = list(prompt)
    if not prompt:
        raise AutotrainError(f"prompt {index} has no tokens; every prompt needs at least one")
    return prompt


def _seeded(seed: int | None, device: torch.device):
    """Seed torch's RNG for one call without changing the caller's RNG state afterwards."""
    if seed is None:
        return nullcontext()
    return _SeededRng(seed, device)


class _SeededRng:
    def __init__(self, seed: int, device: torch.device) -> None:
        devices = [device.index or 0] if device.type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self._seed = seed

    def __enter__(self) -> None:
        self._fork.__enter__()
        torch.manual_seed(self._seed)

    def __exit__(self, *exc) -> None:
        self._fork.__exit__(*exc)
