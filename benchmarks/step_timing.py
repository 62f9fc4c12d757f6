"""Per-step timing shared by the throughput benchmarks: our Lightning runs and TRL's trainers
are timed by the same clock, around the same optimizer step.

Run the benchmarks as scripts (``python benchmarks/<name>.py``): this module is imported from
the script's own folder.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


class StepTimer:
    """Wall and process-CPU time of each step after ``warmup`` steps, with its tokens.

    ``stop(tokens, timed=False)`` leaves a step out entirely (e.g. an epoch that fills a cache).
    """

    def __init__(self, warmup: int) -> None:
        self.warmup, self.seen = warmup, 0
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.tokens: list[int] = []

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self, tokens: int, timed: bool = True) -> None:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        if not timed:
            return
        self.seen += 1
        if self.seen > self.warmup:
            self.wall.append(wall)
            self.cpu.append(cpu)
            self.tokens.append(tokens)

    def summary(self, per_step: int = 1, unit: str = "steps") -> dict[str, float]:
        """Medians over the timed steps; ``{unit}_per_s`` counts ``per_step`` units a step
        (e.g. pairs)."""
        if not self.wall:
            raise RuntimeError(f"no timed steps ({self.seen} seen, {self.warmup} warm-up)")
        wall, cpu = statistics.median(self.wall), statistics.median(self.cpu)
        tokens = statistics.mean(self.tokens)
        return {f"{unit}_per_s": per_step / wall, f"cpu_{unit}_per_s": per_step / cpu,
                "tokens_per_s": tokens / wall, "median_step_s": wall, "median_cpu_step_s": cpu,
                "mean_step_s": statistics.mean(self.wall), "timed_steps": len(self.wall),
                "mean_tokens_per_step": tokens}


def time_trl_steps(trainer: Any, timer: StepTimer, tokens: Callable[[dict], int]) -> None:
    """Time every optimizer step of a ``transformers.Trainer`` (``tokens(inputs)``: the tokens
    of the step's batch)."""
    from transformers import TrainerCallback

    step_tokens = [0]

    class Timing(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            timer.start()

        def on_step_end(self, args, state, control, **kwargs):
            timer.stop(step_tokens[0])

    trainer.add_callback(Timing())
    original = trainer.training_step

    def counting_step(model, inputs, *args, **kwargs):
        step_tokens[0] = tokens(inputs)
        return original(model, inputs, *args, **kwargs)

    trainer.training_step = counting_step
