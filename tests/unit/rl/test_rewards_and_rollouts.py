"""Rewards never kill a run, and rollouts keep sampled tokens with a mask of the policy's own."""

import math

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig
from autotrain_pl.generation.token_completer import TokenCompletion
from autotrain_pl.models import load_tokenizer
from autotrain_pl.rendering import get_renderer
from autotrain_pl.rl import CombinedReward
from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.rewards import answers_match
from autotrain_pl.rl.rollouts import collect_rollouts


def test_answers_compare_as_numbers_or_normalized_text():
    assert answers_match(" 07 ", "7") and not answers_match("7 apples", "7")
    assert answers_match("The Eiffel Tower.", "eiffel tower")


def test_weighted_rewards_and_failures_are_counted_not_raised():
    reward = CombinedReward({"correctness": 1.0, "format": 0.5})
    assert reward("12", "12").reward == 1.5
    assert reward("12!", "12").reward == 0.0

    def broken(reply, reference, **context):
        raise ValueError("judge offline")

    def nan(reply, reference, **context):
        return math.nan

    for function in (broken, nan):
        outcome = CombinedReward.__new__(CombinedReward)
        outcome.functions, outcome.weights = {"x": function}, {"x": 1.0}
        result = outcome("1", "1")
        assert result.failed and result.reward == 0.0 and result.error


def test_unknown_reward_and_environment_names_fail_in_one_line():
    with pytest.raises(AutotrainError, match="rl_reward_fn"):
        CombinedReward("corectness")
    with pytest.raises(AutotrainError, match="rl_env_type"):
        ENVIRONMENTS.get("arithmetc")


class FakeEngine:
    """Returns fixed replies and records each call."""

    def __init__(self, replies: list[list[int]]):
        self.replies, self.calls = replies, []

    def sample(self, prompts, sampling):
        self.calls.append((len(prompts), sampling.num_return_sequences))
        out = []
        for _ in prompts:
            for tokens in self.replies[:sampling.num_return_sequences]:
                out.append(TokenCompletion(tokens=tokens, logprobs=[-0.5] * len(tokens),
                                           stop_reason="eos", text=""))
        return out


def test_groups_are_sampled_in_one_call_and_only_replies_are_masked():
    tokenizer = load_tokenizer("builtin:tiny")
    renderer = get_renderer("chatml", tokenizer)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    right, wrong = tokenizer.encode("7", add_special_tokens=False), tokenizer.encode(
        "8", add_special_tokens=False)
    engine = FakeEngine([right + [end], wrong + [end], right + [end]])
    reward = CombinedReward("correctness")
    problems = [{"prompt_ids": renderer.build_generation_prompt([{"role": "user",
                                                                 "content": f"{a} + 4?"}]),
                 "reference": "7", "metadata": {}} for a in (3, 3)]
    builders = [ENVIRONMENTS.get("arithmetic")(p, reward) for p in problems]
    rollouts = collect_rollouts(builders, engine, renderer, 3, SamplingConfig(max_new_tokens=4))
    assert engine.calls == [(2, 3)]  # both groups, G=3 each, one call
    assert [r.reward for r in rollouts] == [1.0, 0.0, 1.0] * 2
    assert [r.group for r in rollouts] == [0, 0, 0, 1, 1, 1]
    for rollout in rollouts:
        prompt = rollout.prompt_length
        assert rollout.mask == [0] * prompt + [1] * (len(rollout.token_ids) - prompt)
        assert rollout.logprobs[prompt:] == [-0.5] * (len(rollout.token_ids) - prompt)


def test_a_multi_turn_episode_keeps_sampled_tokens_and_masks_the_environment():
    tokenizer = load_tokenizer("builtin:tiny")
    renderer = get_renderer("chatml", tokenizer)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def reply(text):
        return tokenizer.encode(text, add_special_tokens=False) + [end]

    problem = {"prompt_ids": [], "reference": "5",
               "messages": [{"role": "user", "content": "Guess 1 to 8."}]}
    builder = ENVIRONMENTS.get("guess_number")(problem, None, max_turns=4)
    engine = FakeEngine([reply("3")])
    rollouts = collect_rollouts([builder], engine, renderer, 1, SamplingConfig(max_new_tokens=4))
    (rollout,) = rollouts
    assert rollout.turns == 4 and rollout.reward == 0.0  # always 3: never right

    engine = FakeEngine([reply("3")])
    engine.replies_by_call = [reply("3"), reply("5")]
    calls = iter(engine.replies_by_call)
    engine.sample = lambda prompts, sampling: [
        TokenCompletion(tokens=next(calls), logprobs=[-1.0, -1.0], stop_reason="eos", text="")]
    (rollout,) = collect_rollouts([builder], engine, renderer, 1, SamplingConfig(max_new_tokens=4))
    assert rollout.turns == 2 and rollout.reward == pytest.approx(1 - 1 / 4)
    # The sampled tokens sit in the episode as sampled, trained; everything else is not.
    expected = renderer.build_generation_prompt([
        {"role": "user", "content": "Guess 1 to 8."}, {"role": "assistant", "content": "3"},
        {"role": "user", "content": "Higher."}]) + reply("5")
    assert rollout.token_ids == expected
    trained = [t for t, m in zip(rollout.token_ids, rollout.mask, strict=True) if m]
    assert trained == reply("3") + reply("5")
