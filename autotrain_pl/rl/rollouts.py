"""Rollouts: sample every environment's turn through one engine and keep what training needs.

``RolloutEngine`` is the one interface the RL objectives sample through; ``CompleterEngine``
implements it with our ``TokenCompleter`` (batched ``generate`` with the KV cache, raw
log-probabilities, stop strings). A faster engine (vLLM on a GPU) implements the same
``sample`` and plugs in without touching the objectives.

``collect_rollouts`` runs the episodes of a batch of group builders: the G environments of a
group that share their prompt are sampled in ONE call with ``num_return_sequences=G``, and
groups go ``chunk_size`` prompts per call. Each episode becomes a ``Rollout`` holding the token
ids exactly as sampled, their behaviour log-probabilities and the mask of trained tokens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig, TokenCompleter
from autotrain_pl.generation.token_completer import TokenCompletion
from autotrain_pl.rl.types import Action, Env, EnvGroupBuilder, Observation, Rollout

log = logging.getLogger(__name__)


class RolloutEngine(Protocol):
    """Samples completions of token-id prompts."""

    def sample(self, prompts: Sequence[Sequence[int]], sampling: SamplingConfig
               ) -> list[TokenCompletion]:
        """``sampling.num_return_sequences`` completions per prompt, prompt-major, each with
        its tokens and their raw log-probabilities."""


class CompleterEngine:
    """``RolloutEngine`` on ``TokenCompleter``: the policy itself, in eval mode, no grad.

    Args:
        model, tokenizer, renderer: the policy being trained and its chat format.
        chunk_size: prompts per ``generate`` call (``rl_chunk_size``).
        release_cache: free the accelerator's cached memory after sampling
            (``rl_optimize_device_cache``), so the update gets it back.
    """

    def __init__(self, model, tokenizer, renderer, *, chunk_size: int = 8,
                 release_cache: bool = False) -> None:
        self.completer = TokenCompleter(model, tokenizer, renderer, return_logprobs=True,
                                        batch_size=chunk_size)
        self.release_cache = release_cache

    def sample(self, prompts: Sequence[Sequence[int]], sampling: SamplingConfig
               ) -> list[TokenCompletion]:
        model = self.completer.model
        was_training = model.training
        model.eval()  # no dropout while sampling; generate's KV cache on
        try:
            return self.completer.batch_complete(prompts, sampling,
                                                 batch_size=self.completer.batch_size)
        finally:
            model.train(was_training)
            if self.release_cache:
                release_device_cache(self.completer.device)


def release_device_cache(device: torch.device) -> None:
    """Hand cached allocator blocks back between the rollout and the update phases."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def collect_rollouts(builders: Sequence[EnvGroupBuilder], engine: RolloutEngine, renderer,
                     group_size: int, sampling: SamplingConfig) -> list[Rollout]:
    """Run one episode per environment, G per builder; rollouts come back group-major."""
    groups = [builder.make_envs(group_size) for builder in builders]
    for index, envs in enumerate(groups):
        if len(envs) != group_size:
            raise AutotrainError(f"{type(builders[index]).__name__}.make_envs({group_size}) "
                                 f"returned {len(envs)} environments")
    observations = [[env.initial_observation() for env in envs] for envs in groups]
    prompts = [[prompt_ids(o, renderer) for o in obs] for obs in observations]
    completions = _sample_groups(engine, prompts, observations, sampling)
    rollouts = []
    for index, envs in enumerate(groups):
        group = [_finish(env, prompt, completion, renderer, index)
                 for env, prompt, completion in
                 zip(envs, prompts[index], completions[index], strict=True)]
        extra = builders[index].group_rewards(group)
        if extra is not None:
            for rollout, value in zip(group, extra, strict=True):
                if not math.isfinite(value):
                    rollout.failed = True
                rollout.reward += float(value)
        rollouts += group
    return rollouts


def prompt_ids(observation: Observation, renderer) -> list[int]:
    if observation.token_ids is not None:
        return list(observation.token_ids)
    if observation.messages:
        return renderer.build_generation_prompt(observation.messages)
    raise AutotrainError("an RL observation has neither token_ids nor messages")


def _sample_groups(engine: RolloutEngine, prompts: list[list[list[int]]],
                   observations: list[list[Observation]], sampling: SamplingConfig
                   ) -> list[list[TokenCompletion]]:
    """One call for all groups whose environments share prompt and turn settings (G samples of
    each prompt); environments that differ are sampled one by one."""
    shared = [i for i, group in enumerate(prompts)
              if all(p == group[0] for p in group) and
              all((o.stop, o.max_new_tokens) == (observations[i][0].stop,
                                                 observations[i][0].max_new_tokens)
                  for o in observations[i])]
    out: list[list[TokenCompletion]] = [[] for _ in prompts]
    by_settings: dict[tuple, list[int]] = {}
    for i in shared:
        by_settings.setdefault(_settings_key(observations[i][0]), []).append(i)
    for indices in by_settings.values():
        turn = _turn_sampling(sampling, observations[indices[0]][0], len(prompts[indices[0]]))
        results = engine.sample([prompts[i][0] for i in indices], turn)
        size = turn.num_return_sequences
        for offset, i in enumerate(indices):
            out[i] = results[offset * size:(offset + 1) * size]
    for i in set(range(len(prompts))) - set(shared):
        out[i] = [engine.sample([p], _turn_sampling(sampling, o, 1))[0]
                  for p, o in zip(prompts[i], observations[i], strict=True)]
    return out


def _settings_key(observation: Observation) -> tuple:
    return tuple(observation.stop), observation.max_new_tokens


def _turn_sampling(sampling: SamplingConfig, observation: Observation, count: int
                   ) -> SamplingConfig:
    return replace(sampling, num_return_sequences=count,
                   stop=tuple(sampling.stop) + tuple(observation.stop),
                   max_new_tokens=observation.max_new_tokens or sampling.max_new_tokens)


def _finish(env: Env, prompt: list[int], completion: TokenCompletion, renderer,
            group: int) -> Rollout:
    """Score the turn; a reward that fails marks the rollout, it never raises."""
    message = renderer.parse_response(completion.tokens)
    action = Action(completion.tokens, completion.text, message, completion.stop_reason)
    rollout = Rollout(
        token_ids=prompt + list(completion.tokens), prompt_length=len(prompt),
        logprobs=[0.0] * len(prompt) + list(completion.logprobs or [0.0] * len(completion.tokens)),
        mask=[0] * len(prompt) + [1] * len(completion.tokens), reward=0.0, group=group,
        truncated=completion.stop_reason == "length", texts=[message.content],
    )
    try:
        result = env.step(action)
    except AutotrainError:
        raise
    except Exception as error:  # noqa: BLE001 - one failed sample must not kill the run
        log.debug("reward failed: %r", error)
        rollout.failed = True
        return rollout
    if not result.done:
        raise AutotrainError(f"{type(env).__name__}.step returned done=False: multi-turn "
                             "episodes are not supported by collect_rollouts yet")
    rollout.reward = float(result.reward)
    rollout.failed = not math.isfinite(rollout.reward)
    rollout.metrics = dict(result.metrics)
    return rollout
