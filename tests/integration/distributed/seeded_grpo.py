"""GRPO whose rollouts depend on the prompt and the step only, not on the batch or the rank.

Sampling draws from one RNG stream per generate call, so the same prompts split over two ranks
sample other tokens than in one batch. Seeding each prompt's call by (step, prompt) makes the
rollouts identical however the prompts are spread, which isolates what the DDP test checks:
that the update from given rollouts does not depend on the world size.
"""

import zlib
from dataclasses import replace

from autotrain_pl.objectives import GRPOModule


class PromptSeededEngine:
    def __init__(self, inner, step) -> None:
        self.inner, self.step = inner, step

    def sample(self, prompts, sampling):
        out = []
        for prompt in prompts:
            seed = zlib.crc32(repr((self.step(), list(prompt))).encode())
            out += self.inner.sample([prompt], replace(sampling, seed=seed))
        return out


class PromptSeededGRPO(GRPOModule):
    @property
    def engine(self):
        engine = GRPOModule.engine.fget(self)
        if not isinstance(engine, PromptSeededEngine):
            engine = PromptSeededEngine(engine, lambda: self.global_step)
            GRPOModule.engine.fset(self, engine)
        return engine


def digit_share(reply: str, reference: str | None, **context) -> float:
    """A reward an untrained model earns unevenly (correctness would be 0 for every reply, and
    so would every advantage)."""
    return sum(ch.isdigit() for ch in reply) / max(len(reply), 1)
