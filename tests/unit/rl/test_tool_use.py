"""Tool use: calls are parsed and run, results come back as tool messages that carry no loss, and
a bad call becomes an error the model reads instead of a crash."""

import time

import pytest

from autotrain_pl.arithmetic import calculator
from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig
from autotrain_pl.models import load_tokenizer
from autotrain_pl.rendering import get_renderer
from autotrain_pl.rendering.messages import ToolCall
from autotrain_pl.rendering.tools import as_tool_schemas
from autotrain_pl.rl import CombinedReward
from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.rollouts import collect_rollouts
from autotrain_pl.rl.tools import ToolBox

QUESTION = [{"role": "user", "content": "What is 12 * 34?"}]
CALL = {"type": "function", "function": {"name": "calculator",
                                         "arguments": {"expression": "12 * 34"}}}


def test_the_calculator_is_exact_and_evaluates_arithmetic_only():
    assert calculator("347 * 829") == str(347 * 829)
    assert calculator("(2 + 3) ** 2 - 7 / 2") == "21.5"
    assert calculator("-4 // 3") == "-2"
    for bad in ("__import__('os')", "2 ** 1000", "x + 1", "1 +"):
        with pytest.raises(ValueError):
            calculator(bad)


def slow(seconds: float) -> str:
    """Sleep.

    Args:
        seconds: How long.
    """
    time.sleep(seconds)
    return "awake"


def broken(text: str) -> str:
    """Always fails.

    Args:
        text: Anything.
    """
    raise RuntimeError("backend down")


def lookup(key: str) -> dict:
    """Look a key up.

    Args:
        key: The key.
    """
    return {"key": key, "found": True}


def test_a_bad_call_is_an_error_message_not_an_exception():
    box = ToolBox(["calculator", slow, broken, lookup], timeout=0.2)
    assert [s["function"]["name"] for s in box.schemas] == ["calculator", "slow", "broken",
                                                            "lookup"]
    assert box.call(ToolCall("calculator", {"expression": "6 * 7"})).content == "42"
    assert box.call(ToolCall("lookup", {"key": "a"})).content == '{"key": "a", "found": true}'
    cases = [
        (ToolCall("search", {"q": "x"}), "unknown tool", "no tool 'search'"),
        (ToolCall("calculator", {"expr": "1"}), "bad arguments", "wrong arguments"),
        (ToolCall("broken", {"text": "x"}), "raised", "RuntimeError: backend down"),
        (ToolCall("slow", {"seconds": 5}), "timeout", "timed out after 0.2 s"),
        (ToolCall("calculator", {"expression": "1/0"}), "raised", "ZeroDivisionError"),
    ]
    for call, error, text in cases:
        started = time.perf_counter()
        result = box.call(call)
        assert result.error == error and text in result.content and result.content.startswith(
            "Error:")
        assert time.perf_counter() - started < 2  # the timeout does not wait for the tool


def test_tool_lists_are_checked():
    with pytest.raises(AutotrainError, match="rl_env_options.tools"):
        ToolBox("calculator")
    with pytest.raises(AutotrainError, match="tool_timeout"):
        ToolBox(["calculator"], timeout=0)
    with pytest.raises(AutotrainError, match="rl_env_options.tools"):
        ToolBox(["calculater"])


def run_episode(engine_class, chat_format, replies, **options):
    tokenizer = load_tokenizer("builtin:tiny")
    renderer = get_renderer(chat_format, tokenizer)
    problem = {"prompt_ids": [], "messages": QUESTION, "reference": "408"}
    builder = ENVIRONMENTS.get("tool_use")(problem, CombinedReward("correctness"), **options)
    engine = engine_class(tokenizer, renderer, replies)
    (rollout,) = collect_rollouts([builder], engine, renderer, 1, SamplingConfig(max_new_tokens=64))
    return rollout, renderer


HERMES_CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "12 * 34"}}\n' \
              '</tool_call>'
LLAMA3_CALL = '{"name": "calculator", "parameters": {"expression": "12 * 34"}}'


@pytest.mark.parametrize("chat_format,call", [("chatml", HERMES_CALL), ("llama3", LLAMA3_CALL)])
def test_an_episode_is_the_tool_chat_as_sft_renders_it_with_only_the_model_trained(
        scripted_engine, chat_format, call):
    rollout, renderer = run_episode(scripted_engine, chat_format, [call, "408"])
    assert rollout.reward == 1.0 and rollout.turns == 2 and not rollout.failed
    assert rollout.metrics == {"tool_calls": 1.0, "tool_errors": 0.0, "reward/correctness": 1.0,
                               "answered": 1.0, "valid_tool_call": 1.0,
                               "correct_tool_call": 1.0}
    # Token for token what SFT trains on for the same chat, tools in the system prompt included:
    chat = [*QUESTION, {"role": "assistant", "content": "", "tool_calls": [CALL]},
            {"role": "tool", "content": "408", "name": "calculator"},
            {"role": "assistant", "content": "408"}]
    example = renderer.build_supervised_example(chat, "all_assistant_messages",
                                                tools=as_tool_schemas([calculator]))
    length = len(rollout.token_ids)  # the episode ends at the reply's stop token, before the
    tokenizer = renderer.tokenizer   # format's trailing newline
    assert tokenizer.decode(example.input_ids).startswith(tokenizer.decode(rollout.token_ids))
    if chat_format == "llama3":  # the builtin BPE merges the header's "\n\n" into an earlier
        return                   # turn's text in SFT, but not in a prompt (rendering.llama)
    assert rollout.token_ids == list(example.input_ids[:length])
    # Trained: the model's own tokens as SFT weighs them (results: no loss), except what follows
    # a turn's end token (chatml's SFT footer trains the newline after <|im_end|>; sampling stops
    # at <|im_end|>, so there the newline is the environment's).
    ends = {stop[-1] for stop in renderer.stop_sequences()}
    ids, weights = list(example.input_ids), list(example.loss_weights)
    expected = [weights[i] > 0 and ids[i - 1] not in ends for i in range(1, length)]
    assert [bool(m) for m in rollout.mask[1:]] == expected


def test_a_malformed_call_is_reported_to_the_model_and_the_episode_goes_on(scripted_engine):
    rollout, renderer = run_episode(scripted_engine, "chatml", ['<tool_call>\n{"name": "calculator"\n</tool_call>',
                                               "408"])
    assert rollout.turns == 2 and rollout.reward == 1.0 and not rollout.failed
    assert rollout.metrics["tool_errors"] == 1.0 and rollout.metrics["valid_tool_call"] == 0.0
    text = renderer.tokenizer.decode(rollout.token_ids)
    assert "Error: the tool call could not be read" in text


def test_step_rewards_are_paid_once_and_an_unanswered_episode_earns_no_answer_reward(
        scripted_engine):
    rollout, _ = run_episode(scripted_engine, "chatml", [HERMES_CALL] * 3, max_turns=3, call_reward=0.2)
    assert rollout.turns == 3 and rollout.reward == pytest.approx(0.2)
    assert rollout.metrics["answered"] == 0.0 and rollout.metrics["tool_calls"] == 3.0
    assert rollout.metrics["correct_tool_call"] == 1.0
    wrong, _ = run_episode(scripted_engine, "chatml", [HERMES_CALL.replace("34", "43"), "408"],
                           call_reward=0.2, correct_call_reward=0.5)
    assert wrong.reward == pytest.approx(1.2) and wrong.metrics["correct_tool_call"] == 0.0
    right, _ = run_episode(scripted_engine, "chatml", [HERMES_CALL, HERMES_CALL, "7"],
                           call_reward=0.2, correct_call_reward=0.5)
    assert right.reward == pytest.approx(0.7)  # each paid once; the wrong answer earns nothing


def test_tool_use_options_are_checked():
    problem = {"prompt_ids": [], "messages": QUESTION, "reference": "408"}
    make = ENVIRONMENTS.get("tool_use")
    with pytest.raises(AutotrainError, match="max_turns"):
        make(problem, CombinedReward("correctness"), max_turns=1)
    with pytest.raises(AutotrainError, match="prompt messages"):
        make({"prompt_ids": [1], "reference": "1"}, CombinedReward("correctness"))
