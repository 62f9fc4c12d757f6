"""``BenchmarkEvalCallback``: a multiple-choice benchmark scored during training.

The benchmark code is the evaluator's (``evaluation.benchmarks``, harness-faithful prompts and
log-likelihood scoring), so a value logged here equals what ``aitrain eval --benchmark`` reports
for the same weights, data and settings. The documents and their k-shot prompts are read and
drawn once, in ``setup`` (bad data fails before training), and scored at every evaluation on
the schedule of ``ScheduledEvalCallback`` (every validation run, every N steps or epochs, end).

Short names run the benchmark as the Open LLM Leaderboard (v1) did: ``arc`` is ARC-Challenge,
25-shot; ``truthfulqa`` is TruthfulQA MC2, 0-shot; ``hellaswag`` 10-shot; ``mmlu`` 5-shot.
``num_fewshot`` overrides the k-shot count; the log line says what runs.

Values are logged as ``eval/<benchmark>_<metric>`` (``eval/arc_challenge_acc``,
``eval/arc_challenge_acc_norm``; standard errors are left out). Every rank scores all documents
(the same values everywhere); pass ``limit`` to score a leading share at each evaluation.
"""

from __future__ import annotations

import logging

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from autotrain_pl.callbacks.scheduled_eval import ScheduledEvalCallback, check_positive
from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.policy import PolicyHolder

log = logging.getLogger(__name__)
_NAME = "BenchmarkEvalCallback"


def describe_benchmark(name: str, num_fewshot: int | None = None) -> tuple[str, int, str]:
    """``(registry name, k-shot, log line)`` of a benchmark as it will run, checked.

    ``num_fewshot`` None takes the Open LLM Leaderboard's count for the benchmark (0 where it
    has none). Raises ``AutotrainError`` for an unknown name or an impossible k.
    """
    from autotrain_pl.evaluation.benchmarks import get_benchmark, leaderboard_task

    bench = get_benchmark(name)
    task = leaderboard_task(name)
    shots = num_fewshot if num_fewshot is not None else (task.num_fewshot if task else 0)
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 0:
        raise AutotrainError(f"{_NAME}.num_fewshot={num_fewshot!r} must be 0 or more")
    bench.check_num_fewshot(shots)
    title = task.title if task else bench.name
    if task is None:
        how = f"{shots}-shot"
    elif shots == task.num_fewshot:
        how = f"{shots}-shot, headline {task.metric}, as on the Open LLM Leaderboard"
    else:
        how = (f"{shots}-shot as configured; the Open LLM Leaderboard ran it {task.num_fewshot}-"
               f"shot, headline {task.metric}")
    return bench.name, shots, f"{name}: running {title} ({bench.name}, {how})"


class BenchmarkEvalCallback(ScheduledEvalCallback):
    """Score a multiple-choice benchmark during training (see module docstring).

    Args:
        benchmark: ``arc``, ``truthfulqa``, ``mmlu``, ``hellaswag``, a variant
            (``arc_easy``, ``truthfulqa_mc1``...) or a ``Benchmark`` import path.
        data_path: a local copy in the hub layout (``benchmarks.loading``); None reads the hub
            dataset (which needs the network or the ``datasets`` cache).
        num_fewshot: solved examples per question; None: the leaderboard's count.
        limit: score only the first ``limit`` documents at each evaluation.
        batch_size: questions per forward pass.
        every_n_steps, every_n_epochs, eval_at_start, eval_at_end, prefix: the schedule and the
            log prefix (``ScheduledEvalCallback``); prefix ``eval`` by default.
    """

    evaluates_test = False  # the benchmark is its own data, whatever the stage

    def __init__(
        self,
        benchmark: str,
        data_path: str | None = None,
        num_fewshot: int | None = None,
        limit: int | None = None,
        batch_size: int = 8,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = None,
        eval_at_start: bool = False,
        eval_at_end: bool = True,
        prefix: str = "eval",
    ) -> None:
        if not isinstance(benchmark, str) or not benchmark.strip():
            raise AutotrainError(f"{_NAME}.benchmark must name a benchmark, e.g. arc")
        self.benchmark, self.num_fewshot, self.description = describe_benchmark(benchmark,
                                                                                num_fewshot)
        check_positive(_NAME, "limit", limit)
        check_positive(_NAME, "batch_size", batch_size, allow_none=False)
        super().__init__(every_n_steps=every_n_steps, every_n_epochs=every_n_epochs,
                         eval_at_start=eval_at_start, eval_at_end=eval_at_end, prefix=prefix)
        self.data_path = data_path
        self.limit = limit
        self.batch_size = batch_size
        self.prepared = None  # evaluation.benchmarks.PreparedBenchmark, after setup

    @property
    def state_key(self) -> str:
        return self._generate_state_key(benchmark=self.benchmark, prefix=self.prefix)

    def prepare(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        from autotrain_pl.evaluation.benchmarks import prepare_benchmark

        if self.prepared is None:
            self.prepared = prepare_benchmark(self.benchmark, data_path=self.data_path,
                                              num_fewshot=self.num_fewshot, limit=self.limit)
            rank_zero_info(f"benchmark {self.benchmark}: {len(self.prepared.docs)} questions "
                           f"from {self.prepared.details['source']}")

    def evaluate(self, trainer: Trainer, pl_module: LightningModule, stage: str,
                 when: str) -> dict[str, float]:
        from autotrain_pl.evaluation.benchmarks import score_benchmark

        if not isinstance(pl_module, PolicyHolder) or pl_module.tokenizer is None:
            raise AutotrainError(f"{_NAME} needs an autotrain_pl objective with a tokenizer "
                                 "(trained on a ChatDataModule)")
        if self.prepared is None:
            self.prepare(trainer, pl_module, stage)
        run = score_benchmark(pl_module.model, pl_module.tokenizer, self.prepared,
                              batch_size=self.batch_size)
        return {f"{self.benchmark}_{name}": value for name, value in run.metrics.items()
                if not name.endswith("_stderr")}
