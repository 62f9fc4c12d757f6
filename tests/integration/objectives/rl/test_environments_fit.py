"""Environments train end to end: GRPO raises a reward model's score, shortens games, and
learns to call a tool correctly."""

import csv
import json
from pathlib import Path

import pytest
import torch
from fit_testing import make_trainer
from lightning.pytorch.loggers import CSVLogger

from autotrain_pl.data import ChatDataModule
from autotrain_pl.models import load_model, load_tokenizer
from autotrain_pl.objectives import GRPOModule, SFTModule
from autotrain_pl.rendering.tools import as_tool_schemas
from autotrain_pl.rl import REWARD_FUNCTIONS
from autotrain_pl.rl.tools import TOOLS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def logged(root: Path, name: str) -> list[float]:
    rows = list(csv.DictReader(open(next(root.glob("**/metrics.csv")))))
    return [float(r[name]) for r in rows if r.get(name)]


def sft_then_grpo(root: Path, sft_data: ChatDataModule, sft_steps: int, rl_path: str,
                  rl_steps: int, **grpo_options) -> Path:
    """Part-train builtin:tiny with SFT, then run GRPO from its export; returns the GRPO run's
    directory (its metrics.csv has a row per step)."""
    sft = SFTModule("builtin:tiny", learning_rate=3e-3, lr_scheduler="constant",
                    export_mode="full")
    make_trainer(root / "sft", max_steps=sft_steps).fit(sft, datamodule=sft_data)
    start = str(root / "sft" / "export")
    data = ChatDataModule(rl_path, tokenizer=start, chat_format="chatml", batch_size=8, seed=0)
    module = GRPOModule(start, num_generations=8, lr_scheduler="constant", **grpo_options)
    trainer = make_trainer(root / "rl", max_steps=rl_steps, logger=CSVLogger(root / "rl"),
                           log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    return root / "rl"


def test_grpo_raises_the_score_of_a_reward_model(tmp_path):
    torch.manual_seed(0)
    reward_model = tmp_path / "reward_model"
    load_model("builtin:tiny", head="reward").save_pretrained(reward_model)
    load_tokenizer("builtin:tiny").save_pretrained(reward_model)
    data = ChatDataModule("synthetic:rl_prompts?n=256&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=8, seed=0)
    module = GRPOModule("builtin:tiny", num_generations=8, max_new_tokens=6,
                        rl_env_type="reward_model", rl_reward_model_path=str(reward_model),
                        learning_rate=3e-3, lr_scheduler="constant")
    root = tmp_path / "run"
    trainer = make_trainer(root, max_steps=30, logger=CSVLogger(root), log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    rewards = logged(root, "train/reward")
    assert len(rewards) == 30
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.05, (first, last)



def test_grpo_shortens_guess_the_number_games(tmp_path):
    """A model stopped after 5 SFT steps often replies with something that is not a number, and
    each such reply costs a turn; the game's reward (fewer turns earn more) must cut the mean
    number of turns, here from about 3.9 of at most 4."""
    torch.manual_seed(0)
    games = ChatDataModule("synthetic:guess_number_games?n=2000&seed=0&low=1&high=4",
                           tokenizer="builtin:tiny", chat_format="chatml",
                           train_on="all_assistant_messages", batch_size=16, seed=0)
    root = sft_then_grpo(tmp_path, games, 5, "synthetic:guess_number?n=400&seed=1&low=1&high=4",
                         40, max_new_tokens=4, rl_env_type="guess_number",
                         rl_env_options={"max_turns": 4}, learning_rate=2e-3)
    turns = logged(root, "train/turns")
    assert len(turns) == 40
    first, last = sum(turns[:5]) / 5, sum(turns[-10:]) / 10
    assert last < first - 0.25, (first, last)


@TOOLS.register("test_sky_colour")
def sky_colour() -> str:
    """The colour of the sky."""
    return "blue"


@REWARD_FUNCTIONS.register("test_no_answer_reward")
def no_answer_reward(reply: str, reference, **context) -> float:
    """Leaves the tool rewards alone: the test is about the calls, not the final answer."""
    return 0.0


def test_grpo_raises_the_rate_of_correct_tool_calls(tmp_path):
    """SFT on chats where half the calls pass an argument the tool does not take (the tool
    answers with an error) gives a model whose sampled calls are right about a fifth of the
    time; GRPO with a per-step reward for the call that returns the answer must raise that."""
    torch.manual_seed(0)
    tools = json.dumps(as_tool_schemas([sky_colour]))
    question = {"role": "user", "content": "What colour is the sky?"}
    chats = []
    for index in range(600):
        arguments = {} if index % 2 == 0 else {"colour": "red"}
        result = "blue" if index % 2 == 0 else "Error: wrong arguments for sky_colour."
        call = {"type": "function", "function": {"name": "sky_colour", "arguments": arguments}}
        chats.append({"tools": tools, "messages": [
            question, {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": result, "name": "sky_colour"},
            {"role": "assistant", "content": "blue"}]})
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    (tmp_path / "questions.jsonl").write_text(
        (json.dumps({"messages": [question], "reference": "blue"}) + "\n") * 300)
    chat_data = ChatDataModule(str(tmp_path / "chats.jsonl"), tokenizer="builtin:tiny",
                               chat_format="chatml", train_on="all_assistant_messages",
                               batch_size=16, seed=0)
    root = sft_then_grpo(tmp_path, chat_data, 80, str(tmp_path / "questions.jsonl"), 15,
                         max_new_tokens=40, rl_env_type="tool_use",
                         rl_env_options={"tools": ["test_sky_colour"], "max_turns": 2,
                                         "correct_call_reward": 1.0},
                         rl_reward_fn="test_no_answer_reward", learning_rate=6e-4)
    correct = logged(root, "train/correct_tool_call")
    assert len(correct) == 15
    first, last = sum(correct[:5]) / 5, sum(correct[-5:]) / 5
    assert last > first + 0.1, (first, last)
