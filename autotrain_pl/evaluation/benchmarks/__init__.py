"""Multiple-choice benchmarks (MMLU, HellaSwag, ARC, TruthfulQA) scored by log-likelihood."""

from autotrain_pl.evaluation.benchmarks.arc import ARCChallenge, ARCEasy
from autotrain_pl.evaluation.benchmarks.base import (
    Benchmark,
    MultipleChoiceDoc,
    choice_metrics,
    mc2_score,
)
from autotrain_pl.evaluation.benchmarks.hellaswag import HellaSwag
from autotrain_pl.evaluation.benchmarks.mmlu import MMLU
from autotrain_pl.evaluation.benchmarks.registry import (
    LEADERBOARD,
    LeaderboardTask,
    available_benchmarks,
    get_benchmark,
    leaderboard_task,
)
from autotrain_pl.evaluation.benchmarks.runner import (
    BenchmarkRun,
    PreparedBenchmark,
    prepare_benchmark,
    run_benchmark,
    score_benchmark,
)
from autotrain_pl.evaluation.benchmarks.scoring import (
    SCORING_METHODS,
    EncodedQuestion,
    LoglikelihoodScorer,
    encode_pair,
    encode_question,
)
from autotrain_pl.evaluation.benchmarks.truthfulqa import TruthfulQAMC1, TruthfulQAMC2

__all__ = [
    "ARCChallenge", "ARCEasy", "LEADERBOARD", "MMLU", "SCORING_METHODS", "Benchmark",
    "BenchmarkRun", "EncodedQuestion", "HellaSwag", "LeaderboardTask", "LoglikelihoodScorer",
    "MultipleChoiceDoc", "PreparedBenchmark", "TruthfulQAMC1", "TruthfulQAMC2",
    "available_benchmarks", "choice_metrics", "encode_pair", "encode_question", "get_benchmark",
    "leaderboard_task", "mc2_score", "prepare_benchmark", "run_benchmark", "score_benchmark",
]
