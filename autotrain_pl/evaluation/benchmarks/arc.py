"""ARC Easy and Challenge (Clark et al.), mirroring lm-evaluation-harness v0.4.x ``arc_easy`` /
``arc_challenge``.

Data: ``allenai/ai2_arc``, configurations ``ARC-Easy`` and ``ARC-Challenge``, columns ``id``,
``question``, ``choices`` (``{"text": [...], "label": [...]}``) and ``answerKey``. Scored split:
``test``; k-shot examples: ``random.Random(1234)`` draws from ``train``, one draw per scored
document in order (the harness's default sampler).

Prompt: ``"Question: {question}\\nAnswer:"``; choices are the answer texts, scored as
``" " + text``; the gold index is ``choices.label.index(answerKey)`` (labels are ``A``-``E`` or
``1``-``5``, and some questions have 3 or 5 choices).

Comparability. The Open LLM Leaderboard v1 reported ``arc_challenge`` 25-shot ``acc_norm``; use
``num_fewshot=25``. Papers often quote 0-shot ``acc`` (Easy) / ``acc_norm`` (Challenge).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autotrain_pl.evaluation.benchmarks.base import Benchmark, MultipleChoiceDoc


class ARC(Benchmark):
    """AI2 Reasoning Challenge; ``acc`` and ``acc_norm``."""

    hub_path = "allenai/ai2_arc"
    eval_split = "test"
    fewshot_split = "train"
    required_columns = ("id", "question", "choices", "answerKey")

    def to_doc(self, row: Mapping[str, Any]) -> MultipleChoiceDoc:
        choices = row["choices"]
        if not isinstance(choices, Mapping) or "text" not in choices or "label" not in choices:
            raise ValueError("'choices' must be a mapping with 'text' and 'label' lists")
        labels = [str(label) for label in choices["label"]]
        key = str(row["answerKey"]).strip()
        if key not in labels:
            raise ValueError(f"'answerKey' {key!r} is not one of the choice labels {labels}")
        return MultipleChoiceDoc(
            text=f"Question: {row['question']}\nAnswer:",
            choices=tuple(str(text) for text in choices["text"]),
            gold=labels.index(key),
        )


class ARCEasy(ARC):
    name = "arc_easy"
    hub_subset = "ARC-Easy"


class ARCChallenge(ARC):
    name = "arc_challenge"
    hub_subset = "ARC-Challenge"
