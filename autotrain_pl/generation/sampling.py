"""``SamplingConfig``: how to decode, checked once so no option is silently ignored.

transformers warns (and then ignores) when ``top_p`` is set for greedy decoding or ``temperature``
for beam search; a user reading the output never learns their setting had no effect. Here every
such combination is an ``AutotrainError`` at construction time, naming the field and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from autotrain_pl.errors import AutotrainError

#: A stop condition: a string, one token id, or a sequence of token ids.
StopSpec = str | int | tuple[int, ...]


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding options for one ``generate`` call.

    Frozen and hashable, so the async batcher can group requests that share a config.

    Attributes:
        max_new_tokens: most tokens to generate per sequence.
        min_new_tokens: tokens generated before EOS/end-of-turn may end a sequence (benchmarks use
            it to fix the number of generated tokens).
        temperature: 0 means greedy; ``None`` means 1.0 for sampling and 0 for beam search.
        top_k: keep the k most likely tokens (``None`` or 0: off).
        top_p: nucleus sampling mass in (0, 1]; 1 is off.
        min_p: drop tokens below ``min_p`` times the top probability (``None``: off).
        typical_p: locally typical sampling mass in (0, 1]; 1 is off.
        repetition_penalty: > 1 discourages tokens already in the sequence; 1 is off.
        num_beams: > 1 runs deterministic beam search.
        num_return_sequences: completions per prompt (samples, or the best beams).
        stop: extra stop conditions: strings, token ids, or token-id sequences. Lists are
            turned into tuples so the config stays hashable.
        seed: seeds torch's RNG for this call, so sampling is reproducible.
    """

    max_new_tokens: int = 256
    min_new_tokens: int = 0
    temperature: float | None = None
    top_k: int | None = None
    top_p: float = 1.0
    min_p: float | None = None
    typical_p: float = 1.0
    repetition_penalty: float = 1.0
    num_beams: int = 1
    num_return_sequences: int = 1
    stop: tuple[StopSpec, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", _normalize_stop(self.stop))
        if self.temperature is None:
            beam_search = _is_int(self.num_beams) and self.num_beams > 1
            object.__setattr__(self, "temperature", 0.0 if beam_search else 1.0)
        self._check_ranges()
        self._check_combinations()

    # -- derived views --------------------------------------------------------------------
    @property
    def is_beam_search(self) -> bool:
        return self.num_beams > 1

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0 and not self.is_beam_search

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return tuple(s for s in self.stop if isinstance(s, str))

    @property
    def stop_token_sequences(self) -> tuple[tuple[int, ...], ...]:
        """Token-id stops, each as a tuple (single ids become 1-tuples)."""
        return tuple((s,) if isinstance(s, int) else s for s in self.stop if not isinstance(s, str))

    def to_generation_config(self):
        """The equivalent ``transformers.GenerationConfig`` (without EOS/pad ids).

        Disabled filters are set to their neutral values rather than left unset, because
        ``generate`` fills unset fields from the model's own ``generation_config.json`` (for
        example ``top_p=0.9``), which would silently change the sampling distribution.
        """
        from transformers import GenerationConfig

        options: dict[str, Any] = dict(
            max_new_tokens=self.max_new_tokens,
            num_beams=self.num_beams,
            num_return_sequences=self.num_return_sequences,
            do_sample=self.do_sample,
            repetition_penalty=self.repetition_penalty,
            temperature=1.0,  # neutral values; greedy and beam search ignore them
            top_p=1.0,
            typical_p=1.0,
        )
        if self.min_new_tokens:
            options["min_new_tokens"] = self.min_new_tokens
        if self.do_sample:
            options.update(
                temperature=self.temperature,
                top_k=self.top_k or 0,
                top_p=self.top_p,
                typical_p=self.typical_p,
            )
            if self.min_p is not None:
                options["min_p"] = self.min_p
        return GenerationConfig(**options)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["stop"] = [list(s) if isinstance(s, tuple) else s for s in self.stop]
        return out

    # -- validation -------------------------------------------------------------------------
    def _check_ranges(self) -> None:
        _require(_is_int(self.max_new_tokens) and self.max_new_tokens >= 1,
                 f"sampling.max_new_tokens={self.max_new_tokens!r} must be an integer >= 1")
        _require(_is_int(self.min_new_tokens) and 0 <= self.min_new_tokens <= self.max_new_tokens,
                 f"sampling.min_new_tokens={self.min_new_tokens!r} must be an integer in "
                 f"[0, max_new_tokens={self.max_new_tokens}]")
        _require(_is_number(self.temperature) and self.temperature >= 0,
                 f"sampling.temperature={self.temperature!r} must be >= 0 (0 means greedy)")
        _require(self.top_k is None or (_is_int(self.top_k) and self.top_k >= 0),
                 f"sampling.top_k={self.top_k!r} must be an integer >= 0 (0 or None: off)")
        _require(_is_number(self.top_p) and 0 < self.top_p <= 1,
                 f"sampling.top_p={self.top_p!r} must be in (0, 1] (1 means off)")
        _require(self.min_p is None or (_is_number(self.min_p) and 0 <= self.min_p <= 1),
                 f"sampling.min_p={self.min_p!r} must be in [0, 1] or None")
        _require(_is_number(self.typical_p) and 0 < self.typical_p <= 1,
                 f"sampling.typical_p={self.typical_p!r} must be in (0, 1] (1 means off)")
        _require(_is_number(self.repetition_penalty) and self.repetition_penalty > 0,
                 f"sampling.repetition_penalty={self.repetition_penalty!r} must be > 0 (1 means off)")
        _require(_is_int(self.num_beams) and self.num_beams >= 1,
                 f"sampling.num_beams={self.num_beams!r} must be an integer >= 1")
        _require(_is_int(self.num_return_sequences) and self.num_return_sequences >= 1,
                 f"sampling.num_return_sequences={self.num_return_sequences!r} must be an integer >= 1")
        _require(self.seed is None or _is_int(self.seed),
                 f"sampling.seed={self.seed!r} must be an integer or None")

    def _active_filters(self) -> list[str]:
        active = []
        if self.top_k:
            active.append(f"top_k={self.top_k}")
        if self.top_p < 1:
            active.append(f"top_p={self.top_p}")
        if self.min_p:
            active.append(f"min_p={self.min_p}")
        if self.typical_p < 1:
            active.append(f"typical_p={self.typical_p}")
        return active

    def _check_combinations(self) -> None:
        filters = ", ".join(self._active_filters())
        if self.is_beam_search:
            _require(self.num_return_sequences <= self.num_beams,
                     f"sampling.num_return_sequences={self.num_return_sequences} exceeds "
                     f"num_beams={self.num_beams}; raise num_beams or lower num_return_sequences")
            _require(self.temperature == 0,
                     f"sampling.temperature={self.temperature} is ignored by beam search "
                     f"(num_beams={self.num_beams}); set temperature=0 or num_beams=1 to sample")
            _require(not filters,
                     f"beam search (num_beams={self.num_beams}) ignores {filters}; "
                     "drop them or set num_beams=1 with temperature > 0 to sample")
            unsupported = [s for s in self.stop if not isinstance(s, int)]
            _require(not unsupported,
                     f"sampling.stop={unsupported!r}: beam search (num_beams={self.num_beams}) "
                     "supports only single token ids as stops; use those or num_beams=1")
            return
        if self.temperature == 0:
            _require(self.num_return_sequences == 1,
                     f"sampling.num_return_sequences={self.num_return_sequences} with greedy "
                     "decoding (temperature=0) returns identical copies; set temperature > 0 "
                     "or use num_beams")
            _require(not filters,
                     f"greedy decoding (temperature=0) ignores {filters}; "
                     "set temperature > 0 to sample or drop them")


def _normalize_stop(stop: Any) -> tuple[StopSpec, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str | int):
        stop = (stop,)
    if not isinstance(stop, Sequence):
        raise AutotrainError(
            f"sampling.stop={stop!r} must be a list of strings, token ids or token-id lists"
        )
    out: list[StopSpec] = []
    for item in stop:
        if isinstance(item, str):
            _require(item != "", "sampling.stop contains an empty string; remove it")
            out.append(item)
        elif _is_int(item):
            _require(item >= 0, f"sampling.stop token id {item} must be >= 0")
            out.append(int(item))
        elif isinstance(item, Sequence) and item and all(_is_int(t) and t >= 0 for t in item):
            out.append(tuple(int(t) for t in item))
        else:
            raise AutotrainError(
                f"sampling.stop entry {item!r} must be a non-empty string, a token id or a "
                "non-empty list of token ids"
            )
    return tuple(out)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AutotrainError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
