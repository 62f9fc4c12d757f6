"""MMLU (Hendrycks et al.), mirroring lm-evaluation-harness v0.4.x ``mmlu``.

Data: ``cais/mmlu`` configuration ``all`` (or one subject), columns ``question``, ``subject``,
``choices`` (4 strings) and ``answer`` (0-3). Scored split: ``test``; k-shot examples: the first
k rows of the ``dev`` split with the same subject (the harness's ``first_n`` sampler).

Prompt (harness ``_default_template_yaml`` plus the per-subject description)::

    The following are multiple choice questions (with answers) about {subject}.

    {question.strip()}
    A. {choices[0]}
    B. {choices[1]}
    C. {choices[2]}
    D. {choices[3]}
    Answer:

with continuations ``" A"`` ... ``" D"``. ``acc`` is the harness's metric; ``acc_norm`` equals it
here (all choices are one character long) and is reported for uniformity.

Comparability. ``acc`` is the mean over all scored questions, which is how harness v0.4
aggregates the ``mmlu`` group (weighted by subject size). ``acc_macro`` is the unweighted mean of
the per-subject accuracies, which is what the Open LLM Leaderboard v1 reported (5-shot, via an
older harness with the same prompt). The original Hendrycks code uses a different scorer (the
next-token probability of the letters A-D only), so its numbers differ slightly from both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autotrain_pl.evaluation.benchmarks.base import Benchmark, MultipleChoiceDoc

LETTERS = ("A", "B", "C", "D")


class MMLU(Benchmark):
    """MMLU, 57 subjects, 4 choices; report ``acc`` (harness) and ``acc_macro`` (leaderboard v1)."""

    name = "mmlu"
    hub_path = "cais/mmlu"
    hub_subset = "all"
    eval_split = "test"
    fewshot_split = "dev"
    fewshot_sampler = "first_n"
    required_columns = ("question", "subject", "choices", "answer")

    def to_doc(self, row: Mapping[str, Any]) -> MultipleChoiceDoc:
        choices = list(row["choices"])
        if len(choices) != 4:
            raise ValueError(f"'choices' must hold 4 answers, got {len(choices)}")
        pairs = zip(LETTERS, choices, strict=True)
        body = "\n".join(f"{letter}. {choice}" for letter, choice in pairs)
        return MultipleChoiceDoc(
            text=f"{str(row['question']).strip()}\n{body}\nAnswer:",
            choices=LETTERS,
            gold=_answer_index(row["answer"]),
            group=str(row["subject"]),
        )

    def description(self, doc: MultipleChoiceDoc) -> str:
        subject = (doc.group or "").replace("_", " ")
        return f"The following are multiple choice questions (with answers) about {subject}.\n\n"

    def aggregate(self, docs: Sequence[MultipleChoiceDoc], per_doc: Sequence[Mapping[str, float]]
                  ) -> tuple[dict[str, float], dict[str, Any]]:
        metrics, details = super().aggregate(docs, per_doc)
        groups = details.get("groups", {})
        if groups:
            metrics["acc_macro"] = sum(g["acc"] for g in groups.values()) / len(groups)
        return metrics, details


def _answer_index(answer: Any) -> int:
    """``answer`` is an int (parquet/json) or a digit or letter string (csv)."""
    text = str(answer).strip()
    if text.upper() in LETTERS:
        return LETTERS.index(text.upper())
    index = int(text)
    if not 0 <= index < 4:
        raise ValueError(f"'answer' must be 0-3 or A-D, got {answer!r}")
    return index
