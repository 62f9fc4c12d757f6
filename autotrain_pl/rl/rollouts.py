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
    """Run one episode per environment, G per builder; rollouts come back group-major.

    Every turn samples all live episodes at once (the first turn G per shared prompt); a turn
    that does not end its episode appends the model's tokens as sampled, then the environment's
    reply rendered by the chat format (mask 0), and the episode goes on from there.
    """
    groups = [builder.make_envs(group_size) for builder in builders]
    for index, envs in enumerate(groups):
        if len(envs) != group_size:
            raise AutotrainError(f"{type(builders[index]).__name__}.make_envs({group_size}) "
                                 f"returned {len(envs)} environments")
    episodes = [_Episode(env, env.initial_observation(), renderer, index)
                for index, envs in enumerate(groups) for env in envs]
    live = episodes
    first = True
    while live:
        if first:
            grouped = [episodes[g * group_size:(g + 1) * group_size] for g in range(len(groups))]
            completions = _sample_groups(engine, [[e.tokens for e in group] for group in grouped],
                                         [[e.observation for e in group] for group in grouped],
                                         sampling)
            sampled = [c for group in completions for c in group]
        else:  # later turns: every live episode at once, batched by its turn settings
            sampled = _sample_each(engine, live, sampling)
        first = False
        for episode, completion in zip(live, sampled, strict=True):
            episode.take_turn(completion)
        live = [e for e in live if not e.done]
    rollouts = [e.rollout for e in episodes]
    for index, builder in enumerate(builders):
        group = rollouts[index * group_size:(index + 1) * group_size]
        extra = builder.group_rewards(group)
        if extra is not None:
            for rollout, value in zip(group, extra, strict=True):
                if not math.isfinite(value):
                    rollout.failed = True
                rollout.reward += float(value)
    return rollouts


def prompt_ids(observation: Observation, renderer) -> list[int]:
    if observation.token_ids is not None:
        return list(observation.token_ids)
    if observation.messages:
        return renderer.build_generation_prompt(observation.messages, tools=observation.tools)
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


def _sample_each(engine: RolloutEngine, episodes: Sequence[_Episode],
                 sampling: SamplingConfig) -> list[TokenCompletion]:
    """One completion per episode, in one call per distinct turn setting."""
    out: list[TokenCompletion | None] = [None] * len(episodes)
    by_settings: dict[tuple, list[int]] = {}
    for i, episode in enumerate(episodes):
        by_settings.setdefault(_settings_key(episode.observation), []).append(i)
    for indices in by_settings.values():
        turn = _turn_sampling(sampling, episodes[indices[0]].observation, 1)
        for i, completion in zip(indices, engine.sample([episodes[i].tokens for i in indices],
                                                        turn), strict=True):
            out[i] = completion
    return out  # type: ignore[return-value]


def _settings_key(observation: Observation) -> tuple:
    return tuple(observation.stop), observation.max_new_tokens


def _turn_sampling(sampling: SamplingConfig, observation: Observation, count: int
                   ) -> SamplingConfig:
    return replace(sampling, num_return_sequences=count,
                   stop=tuple(sampling.stop) + tuple(observation.stop),
                   max_new_tokens=observation.max_new_tokens or sampling.max_new_tokens)


class _Episode:
    """One environment's episode while it runs: its tokens, mask and behaviour log-probs."""

    def __init__(self, env: Env, observation: Observation, renderer, group: int) -> None:
        self.env, self.observation, self.renderer = env, observation, renderer
        self.messages = list(observation.messages or [])
        self.tools = observation.tools
        prompt = prompt_ids(observation, renderer)
        self.rollout = Rollout(token_ids=list(prompt), prompt_length=len(prompt),
                               logprobs=[0.0] * len(prompt), mask=[0] * len(prompt), reward=0.0,
                               group=group, turns=0)
        self.done = False

    @property
    def tokens(self) -> list[int]:
        return self.rollout.token_ids

    def take_turn(self, completion: TokenCompletion) -> None:
        """Record the sampled turn and step the environment; a failing reward ends the episode
        as failed instead of raising."""
        rollout = self.rollout
        rollout.token_ids += completion.tokens
        rollout.logprobs += list(completion.logprobs or [0.0] * len(completion.tokens))
        rollout.mask += [1] * len(completion.tokens)
        rollout.turns += 1
        rollout.truncated = completion.stop_reason == "length"
        message = self.renderer.parse_response(completion.tokens)
        rollout.texts.append(message.content)
        try:
            result = self.env.step(Action(completion.tokens, completion.text, message,
                                          completion.stop_reason))
        except AutotrainError:
            raise
        except Exception as error:  # noqa: BLE001 - one failed sample must not kill the run
            log.debug("reward failed: %r", error)
            rollout.failed, self.done = True, True
            return
        rollout.reward += float(result.reward)
        for name, value in result.metrics.items():
            rollout.metrics[name] = rollout.metrics.get(name, 0.0) + float(value)
        if not math.isfinite(rollout.reward):
            rollout.failed, self.done = True, True
            return
        if result.done:
            self.done = True
            return
        self._continue(completion, message, result.next_observation)

    def _continue(self, completion: TokenCompletion, reply, observation: Observation | None
                  ) -> None:
        """Append the environment's turn (mask 0) after the model's sampled tokens."""
        if observation is None or not observation.messages or not self.messages:
            raise AutotrainError(
                f"{type(self.env).__name__} continued an episode without messages: a multi-turn "
                "environment gives messages in its first observation and its next ones"
            )
        history = [*self.messages, reply]
        self.messages = [*history, *observation.messages]
        rollout = self.rollout
        between = environment_tokens(self.renderer, history, observation.messages,
                                     ended=completion.stop_reason != "length", tools=self.tools)
        rollout.token_ids += between
        rollout.logprobs += [0.0] * len(between)
        rollout.mask += [0] * len(between)
        self.observation = observation


def environment_tokens(renderer, history: Sequence, new_messages: Sequence,
                       ended: bool = True, tools: list[dict] | None = None) -> list[int]:
    """Tokens between the model's last reply (as sampled, up to its stop sequence) and its next
    turn: the end of the reply's turn, the new messages and the generation prompt.

    Rendered from messages, so the model's sampled tokens are never re-tokenized: the rendered
    conversation is cut right after the reply's stop sequence. ``ended=False`` (the reply ran
    into the token limit) keeps the stop sequence, which the sampled tokens lack. ``tools``: the
    schemas the episode's prompt offered, so both renderings share that prompt.
    """
    prefix = renderer.build_generation_prompt(history[:-1], tools=tools)
    full = renderer.build_generation_prompt([*history, *new_messages], tools=tools)
    # Text after the prompt's last special token may tokenize differently once the reply follows
    # it (a BPE can merge a header's "\n\n" with the reply's first characters); nothing merges
    # across a special token, so the two renderings must agree up to there.
    atomic = set(renderer.tokenizer.all_special_ids) | set(renderer.tokenizer.added_tokens_decoder)
    agreed = max((i + 1 for i, token in enumerate(prefix) if token in atomic), default=0)
    if full[:agreed] != prefix[:agreed]:
        raise AutotrainError("the chat format does not render a conversation as an extension "
                             "of its beginning; multi-turn RL needs one that does")
    for start in range(agreed, len(full)):
        for stop in renderer.stop_sequences():
            if full[start:start + len(stop)] == list(stop):
                cut = start if not ended else start + len(stop)
                return full[cut:]
    raise AutotrainError("the rendered reply has no stop sequence of the chat format")
