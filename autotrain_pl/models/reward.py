"""Reward models: scores at the last token, and ``RewardScorer`` for conversations.

A reward model is ``load_model(ref, head="reward")``: a one-label sequence classifier on a causal
base. Its reward for a sequence is the ``score`` head at the sequence's last real token, as
``transformers``' own ``*ForSequenceClassification`` computes it; here the head runs at that one
position only, not at every position. ``RewardScorer`` renders conversations with the chat
format the model was trained with (recorded in the export) and scores them in padded batches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.heads import head_of, unwrapped
from autotrain_pl.rendering.messages import Conversation, Message, MessageLike, as_messages

#: ``(decoder, rows, positions) -> context``: e.g. ``training.final_layer.trimmed_last_layer``,
#: which runs the decoder's last layer only at the positions read.
LastLayerContext = Callable[[torch.nn.Module, Tensor, Tensor], contextlib.AbstractContextManager]
ConversationLike = Sequence[MessageLike] | Conversation


def reward_parts(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """The decoder (hidden states) and the ``score`` head of a reward model, peft-wrapped or not;
    None where the head is not a plain projection of the last hidden state."""
    base = unwrapped(model)
    decoder = getattr(base, "base_model", None)
    score = getattr(base, "score", None)
    if decoder is None or decoder is base or score is None:
        return None
    return decoder, score


def last_token_positions(attention_mask: Tensor) -> Tensor:
    """``[B]`` position of each row's last real token (any padding side)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * (attention_mask != 0)).argmax(-1)


def rewards_at(model, inputs: dict[str, Tensor | None], rows: Tensor, positions: Tensor,
               last_layer: LastLayerContext | None = None) -> Tensor:
    """``[N]`` rewards read at ``(rows, positions)``: the decoder runs once, the head there only.

    ``rows`` must be sorted when ``last_layer`` trims the last decoder layer to those positions.
    """
    parts = reward_parts(model)
    if parts is None:
        raise AutotrainError(f"{type(unwrapped(model)).__name__} has no score head over a decoder; "
                             "load the model with head='reward'")
    decoder, score = parts
    context = last_layer(decoder, rows, positions) if last_layer else contextlib.nullcontext()
    with context:
        hidden = decoder(**inputs, use_cache=False).last_hidden_state
    return score(hidden[rows, positions]).squeeze(-1)


def sequence_rewards(model, input_ids: Tensor, attention_mask: Tensor,
                     last_layer: LastLayerContext | None = None) -> Tensor:
    """``[B]`` reward of each row of a padded batch, at its last real token.

    Right-padded rows need no mask: attention is causal, so no real token sees the padding after
    it, and the decoder takes its fast causal path. Other padding passes the mask.
    """
    positions = last_token_positions(attention_mask)
    keep = int(positions.max()) + 1
    input_ids, attention_mask = input_ids[:, :keep], attention_mask[:, :keep]
    if reward_parts(model) is None:  # the model's own pooling (last token that is not padding)
        return model(input_ids=input_ids, attention_mask=attention_mask,
                     use_cache=False).logits[:, 0]
    lengths = attention_mask.sum(1)
    right_padded = torch.equal(attention_mask.bool(), torch.arange(keep, device=lengths.device)
                               < lengths[:, None])
    inputs = {"input_ids": input_ids, "attention_mask": None if right_padded else attention_mask}
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    return rewards_at(model, inputs, rows, positions, last_layer)


def set_pad_token(model, tokenizer) -> int:
    """Write the tokenizer's pad id (EOS when it has none) into the model config, where
    ``transformers``' sequence classifiers look for the last real token; returns it."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise AutotrainError("the tokenizer has neither a pad nor an EOS token; set "
                             "tokenizer.pad_token before training or scoring a reward model")
    unwrapped(model).config.pad_token_id = int(pad)
    return int(pad)


def check_pad_token(pad_token_id: int, renderer) -> None:
    """Refuse a pad token that ends every rendered reply: a ``transformers`` sequence classifier
    reads the score at the last token that is not padding, so the exported model would score
    an earlier token than training did."""
    probe = renderer.render_completion([Message("user", "1")], [Message("assistant", "2")])
    if probe.input_ids and probe.input_ids[-1] == pad_token_id:
        raise AutotrainError(
            f"the tokenizer's pad token (id {pad_token_id}) is the last token of every reply in "
            f"chat_format={renderer.name!r}, so an exported reward model would read its score "
            "one token early; give the tokenizer a distinct pad token"
        )


def conversation_ids(renderer, conversation: ConversationLike) -> list[int]:
    """Token ids of a conversation as reward training saw it: the messages up to the last
    non-assistant one as the generation prompt, the trailing assistant messages as the reply."""
    messages = as_messages(conversation.messages if isinstance(conversation, Conversation)
                           else conversation)
    split = len(messages)
    while split > 0 and messages[split - 1].role == "assistant":
        split -= 1
    prompt, reply = messages[:split], messages[split:]
    if not prompt or not reply:
        raise AutotrainError("a conversation to score needs a prompt (e.g. a user message) and "
                             "an assistant reply after it")
    return renderer.build_generation_prompt(prompt) + renderer.render_completion(prompt,
                                                                                 reply).input_ids


def check_reward_model_ref(ref: str, field: str) -> None:
    """One-line error unless ``ref`` is a reward model: a one-label sequence classifier (an
    autotrain_pl reward export, a ``*ForSequenceClassification`` directory or hub model, or a
    ``SEQ_CLS`` adapter). A causal LM would load with a new, random score head and score noise."""
    import json
    from pathlib import Path

    from transformers import AutoConfig

    from autotrain_pl.models.references import resolve_model_ref

    try:
        resolved = resolve_model_ref(ref)
    except AutotrainError as err:
        raise AutotrainError(f"{field}={ref!r}: {err}") from None
    if (resolved.metadata or {}).get("head") == "reward":
        return
    how = "train one with RewardModule (configs/reward.yaml) and give its run or export directory"
    if resolved.is_adapter:
        task = json.loads((Path(resolved.source) / "adapter_config.json").read_text()
                          ).get("task_type")
        if task != "SEQ_CLS":
            raise AutotrainError(f"{field}={ref!r} is a {task or 'causal LM'} adapter, not a "
                                 f"reward model (task_type SEQ_CLS); {how}")
        return
    try:
        config = AutoConfig.from_pretrained(resolved.source)
    except (OSError, ValueError) as err:
        raise AutotrainError(f"{field}={ref!r}: could not read its config "
                             f"({str(err).splitlines()[0]})") from None
    architectures = config.architectures or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        kind = ", ".join(architectures) or config.model_type
        raise AutotrainError(f"{field}={ref!r} is a {kind}, not a sequence-classification "
                             f"reward model; {how}")
    if config.num_labels != 1:
        raise AutotrainError(f"{field}={ref!r} is a classifier with {config.num_labels} labels; "
                             f"a reward model has one; {how}")


class RewardScorer:
    """Scores conversations with a reward model: one float per conversation, higher is better.

    Build one from a reference (``RewardScorer.load("runs/reward")``: an export, a run directory,
    a local or hub model), from a trained ``RewardModule`` (``RewardScorer.from_module``), or
    from a loaded model, tokenizer and renderer.

    Args:
        model: a reward model (``load_model(ref, head="reward")``), peft-wrapped or not.
        tokenizer: its tokenizer, holding the chat format's special tokens.
        renderer: the chat format the model was trained with.
    """

    def __init__(self, model, tokenizer, renderer) -> None:
        if head_of(model) != "reward":
            raise AutotrainError(f"{type(unwrapped(model)).__name__} is not a reward model; load "
                                 "it with head='reward' (AutoModelForSequenceClassification, "
                                 "num_labels=1)")
        self.model, self.tokenizer, self.renderer = model, tokenizer, renderer
        self.pad_token_id = set_pad_token(model, tokenizer)

    @classmethod
    def load(cls, ref: str, *, chat_format: str | None = None, dtype: str = "float32",
             device: str | None = None, **load_options: Any) -> RewardScorer:
        """Load a reward model and its chat format (the export's own, else ``chat_format``,
        else ``auto``). ``device``: ``cuda``, ``cuda:1``, ``mps``, ``cpu`` or None (CUDA, then
        MPS, then CPU); ``load_options`` go to ``load_model``."""
        from autotrain_pl.models.chat import chat_tokenizer, fit_embeddings, resolve_chat_format
        from autotrain_pl.models.devices import select_accelerator
        from autotrain_pl.models.loading import load_model

        chat_format = resolve_chat_format(ref, chat_format)
        tokenizer, renderer = chat_tokenizer(
            ref, chat_format, trust_remote_code=load_options.get("trust_remote_code", False))
        model = load_model(ref, dtype=dtype, head="reward", **load_options)
        fit_embeddings(model, tokenizer)
        if not (getattr(model, "is_loaded_in_4bit", False) or
                getattr(model, "is_loaded_in_8bit", False)):
            base, _, index = (device or "auto").partition(":")
            accelerator = select_accelerator(base)
            model.to(f"{accelerator}:{index}" if index else accelerator)
        model.eval()
        return cls(model, tokenizer, renderer)

    @classmethod
    def from_module(cls, module) -> RewardScorer:
        """The scorer of a ``RewardModule`` (its model, tokenizer and renderer, as trained)."""
        if getattr(module, "tokenizer", None) is None or getattr(module, "renderer", None) is None:
            raise AutotrainError("the module has no tokenizer and renderer yet; fit it on a "
                                 "ChatDataModule or call attach_tokenizer(tokenizer, renderer)")
        return cls(module.model, module.tokenizer, module.renderer)

    def __call__(self, conversations: Sequence[ConversationLike], batch_size: int = 16
                 ) -> list[float]:
        return self.score(conversations, batch_size=batch_size)

    def score(self, conversations: Sequence[ConversationLike], batch_size: int = 16
              ) -> list[float]:
        """Rewards of ``conversations`` (lists of messages: dicts ``{"role", "content"}`` or
        ``Message``; the trailing assistant message(s) are the reply scored)."""
        return self.score_ids([conversation_ids(self.renderer, c) for c in conversations],
                              batch_size=batch_size)

    def score_ids(self, sequences: Sequence[Sequence[int]], batch_size: int = 16) -> list[float]:
        """Rewards of already rendered token sequences, in batches of similar lengths."""
        if batch_size < 1:
            raise AutotrainError(f"batch_size={batch_size} must be >= 1")
        if any(len(s) == 0 for s in sequences):
            raise AutotrainError("cannot score an empty token sequence")
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        rewards = [0.0] * len(sequences)
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    chunk = order[start:start + batch_size]
                    input_ids, attention_mask = self._pad([sequences[i] for i in chunk], device)
                    values = sequence_rewards(self.model, input_ids, attention_mask)
                    for index, value in zip(chunk, values.float().tolist(), strict=True):
                        rewards[index] = value
        finally:
            self.model.train(was_training)
        return rewards

    def _pad(self, sequences: Sequence[Sequence[int]], device) -> tuple[Tensor, Tensor]:
        length = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for row, ids in enumerate(sequences):
            input_ids[row, :len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
            attention_mask[row, :len(ids)] = 1
        return input_ids.to(device), attention_mask.to(device)
