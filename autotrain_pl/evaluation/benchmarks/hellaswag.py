"""HellaSwag (Zellers et al.), mirroring lm-evaluation-harness v0.4.x ``hellaswag``.

Data: ``Rowan/hellaswag``, columns ``activity_label``, ``ctx_a``, ``ctx_b``, ``ctx`` (kept for
layout checks), ``endings`` (4 strings) and ``label`` (``"0"``-``"3"``). Scored split:
``validation`` (the test labels are hidden); k-shot examples: ``random.Random(1234)`` draws from
``train``, one draw per scored document in order, as the harness's default sampler does.

Preprocessing is the harness's ``utils.process_docs``: the query is
``preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())`` and each choice is
``preprocess(ending)``, where ``preprocess`` strips, turns `` [title]`` into ``". "``, drops
other ``[...]`` WikiHow artefacts and collapses double spaces. The prompt is the query alone;
choices are scored as ``" " + ending``.

Comparability. The Open LLM Leaderboard v1 reported 10-shot ``acc_norm``; use
``num_fewshot=10`` and read ``acc_norm``. Our few-shot draws equal the harness's when the same
documents are scored in the same order (no ``--limit`` mismatch).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autotrain_pl.evaluation.benchmarks.base import Benchmark, MultipleChoiceDoc


def preprocess(text: str) -> str:
    """The harness's HellaSwag text cleaning (WikiHow bracket artefacts)."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


class HellaSwag(Benchmark):
    """HellaSwag sentence completion, 4 endings; ``acc`` and ``acc_norm``."""

    name = "hellaswag"
    hub_path = "Rowan/hellaswag"
    eval_split = "validation"
    fewshot_split = "train"
    required_columns = ("activity_label", "ctx_a", "ctx_b", "ctx", "endings", "label")

    def to_doc(self, row: Mapping[str, Any]) -> MultipleChoiceDoc:
        context = row["ctx_a"] + " " + str(row["ctx_b"]).capitalize()
        label = str(row["label"]).strip()
        if not label.isdigit():
            raise ValueError(f"'label' must be a digit, got {row['label']!r} (test rows have none)")
        endings = [preprocess(ending) for ending in row["endings"]]
        if not 0 <= int(label) < len(endings):
            raise ValueError(f"'label' {label} is out of range for {len(endings)} endings")
        return MultipleChoiceDoc(
            text=preprocess(row["activity_label"] + ": " + context),
            choices=tuple(endings),
            gold=int(label),
        )
