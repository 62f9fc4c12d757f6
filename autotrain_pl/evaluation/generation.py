"""Generate replies for held-out conversations and score them against references.

One function serves the ``Evaluator``'s generation task, the periodic-eval callback and the
quickstart, so every place reports the same numbers for the same model and data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering import Conversation, Message


@dataclass
class GenerationScores:
    """Metric values plus one record per example (prompt, prediction, reference)."""

    metrics: dict[str, float]
    records: list[dict[str, Any]] = field(default_factory=list)


def split_prompt_and_reference(conversation: Conversation) -> tuple[list[Message], str]:
    """The messages before the last assistant turn, and the reference answer.

    The reference is ``metadata["reference"]`` when present (synthetic data carries it), else
    the content of the last assistant message.
    """
    messages = conversation.messages
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
    if last is None:
        raise AutotrainError("a generation-eval conversation has no assistant message to compare to")
    reference = conversation.metadata.get("reference", messages[last].content)
    return list(messages[:last]), str(reference)


def generate_and_score(
    model,
    tokenizer,
    renderer,
    conversations: Sequence[Conversation],
    metric_names: Sequence[str] | Mapping[str, Any],
    *,
    sampling=None,
    batch_size: int = 32,
    limit: int | None = None,
    metric_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> GenerationScores:
    """Greedy (by default) replies through the completers, scored by text metrics.

    ``metric_names`` are names (built here with ``metric_kwargs``, before anything is
    generated, so a metric that cannot be built fails early) or already built metrics by name.
    """
    from autotrain_pl.evaluation.metrics import build_metric_collection
    from autotrain_pl.generation import MessageCompleter, SamplingConfig

    conversations = list(conversations)[:limit] if limit else list(conversations)
    if not conversations:
        raise AutotrainError("generation eval got no conversations; check the eval data and limit")
    prompts, references = zip(*(split_prompt_and_reference(c) for c in conversations), strict=True)
    if isinstance(metric_names, Mapping):
        metrics = dict(metric_names)
    else:
        metrics = build_metric_collection(list(metric_names), metric_kwargs)
    for name, metric in metrics.items():
        if metric.kind != "text":
            raise AutotrainError(
                f"metric {name!r} scores tokens, not generated text; use it in language_modeling"
            )
    sampling = sampling or SamplingConfig(max_new_tokens=64, temperature=0.0)
    was_training = model.training
    model.eval()
    try:
        replies = MessageCompleter(model, tokenizer, renderer).batch_complete(
            prompts, sampling, batch_size=batch_size
        )
    finally:
        model.train(was_training)
    predictions = [reply.content for reply in replies]
    values: dict[str, float] = {}
    for metric in metrics.values():
        metric.reset()  # built metrics passed in may hold an earlier call's state
        metric.update(predictions, list(references))
        values.update(metric.compute())
    records = [
        {"prompt": [m.to_dict() for m in prompt], "prediction": pred, "reference": ref}
        for prompt, pred, ref in zip(prompts, predictions, references, strict=True)
    ]
    return GenerationScores(values, records)
