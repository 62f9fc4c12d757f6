"""PPO end to end on a builtin Llama: the reward rises and the value loss falls, the export is the
policy alone, a resumed run keeps its KL coefficient and value head, bad options fail early."""

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from fit_testing import make_trainer
from lightning.pytorch.loggers import CSVLogger
from safetensors import safe_open

from autotrain_pl.cli import run_cli
from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import load_model
from autotrain_pl.objectives import PPOModule
from autotrain_pl.rl import REWARD_FUNCTIONS

ROOT = Path(__file__).parents[4]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@REWARD_FUNCTIONS.register("test_ppo_share_of_e")
def share_of_e(reply: str, reference, **context) -> float:
    """1 plus the share of "e" in the reply: a random model earns some of it, and the offset
    gives the zero-initialised value head something to learn."""
    return 1.0 + reply.count("e") / max(len(reply), 1)


def logged(root: Path, name: str) -> list[float]:
    rows = list(csv.DictReader(open(next(root.glob("**/metrics.csv")))))
    return [float(r[name]) for r in rows if r.get(name)]


def arithmetic(n: int = 512, batch_size: int = 16) -> ChatDataModule:
    return ChatDataModule(f"synthetic:arithmetic?n={n}&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=batch_size, seed=0)


def test_ppo_raises_the_reward_and_learns_its_values(tmp_path):
    torch.manual_seed(0)
    module = PPOModule("builtin:tiny", max_new_tokens=6, rl_reward_fn="test_ppo_share_of_e",
                       rl_kl_coef=0.0, rl_mini_batch_size=8, learning_rate=3e-3,
                       lr_scheduler="constant")
    batches, steps_per_batch = 20, 4 * 2  # epochs x mini-batches: max_steps counts these
    trainer = make_trainer(tmp_path, max_steps=batches * steps_per_batch,
                           logger=CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(module, datamodule=arithmetic())
    rewards, value_losses = logged(tmp_path, "train/reward"), logged(tmp_path, "train/value_loss")
    assert len(rewards) == batches
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.1, (first, last)
    assert sum(value_losses[-5:]) / 5 < value_losses[0] / 10, value_losses
    columns = set(next(csv.DictReader(open(next(tmp_path.glob("**/metrics.csv"))))))
    assert {f"train/{name}" for name in (
        "reward_std", "entropy", "clip_fraction", "approx_kl", "explained_variance",
        "completion_length", "rollout_samples_per_s", "update_samples_per_s")} <= columns
    export = tmp_path / "export"
    with safe_open(str(export / "model.safetensors"), "pt") as weights:
        assert not [key for key in weights.keys() if "value" in key or "score" in key]
    assert type(load_model(str(export))).__name__ == "LlamaForCausalLM"


class RecordStart(L.Callback):
    """What the module holds when (resumed) training starts."""

    def on_train_start(self, trainer, module):
        self.kl_coef = module.kl_controller.value
        self.value_head = module.value_function.score.weight.detach().clone()


def test_a_resumed_run_keeps_its_kl_coefficient_and_value_head(tmp_path):
    options = dict(max_new_tokens=4, rl_reward_fn="test_ppo_share_of_e", rl_target_kl=0.01,
                   rl_kl_horizon=10.0, rl_num_ppo_epochs=1, learning_rate=1e-2,
                   lr_scheduler="constant", export=False)
    torch.manual_seed(0)
    module = PPOModule("builtin:tiny", **options)
    make_trainer(tmp_path, max_steps=1).fit(module, datamodule=arithmetic(32, 8))
    assert module.kl_controller.value != pytest.approx(0.1)  # the controller moved it
    assert bool(module.value_function.score.weight.any())  # the head left its zero start
    checkpoint = tmp_path / "one.ckpt"
    module.trainer.save_checkpoint(checkpoint)

    resumed, start = PPOModule("builtin:tiny", **options), RecordStart()
    make_trainer(tmp_path, max_steps=2, callbacks=[start]).fit(
        resumed, datamodule=arithmetic(32, 8), ckpt_path=str(checkpoint))
    assert start.kl_coef == pytest.approx(module.kl_controller.value)
    torch.testing.assert_close(start.value_head, module.value_function.score.weight)


@pytest.mark.parametrize(("options", "field"), [
    ({"rl_env_type": "arithmetc"}, "rl_env_type"),
    ({"rl_gamma": 1.5}, "rl_gamma"),
    ({"rl_num_ppo_epochs": 0}, "rl_num_ppo_epochs"),
    ({"value_model": "critic"}, "value_model"),
    ({"value_model_path": "builtin:tiny"}, "value_model_path"),
])
def test_bad_options_fail_in_one_line_before_the_model_loads(options, field, monkeypatch):
    import autotrain_pl.objectives.base as base

    monkeypatch.setattr(base, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(AutotrainError, match=field) as error:
        PPOModule("builtin:tiny", **options)
    assert "\n" not in str(error.value)


def test_mini_batch_larger_than_the_rollout_batch_is_refused(tmp_path, capsys):
    code = run_cli(["fit", "--config", str(ROOT / "configs" / "ppo.yaml"),
                    "--model.init_args.model_name_or_path", "builtin:tiny",
                    "--model.init_args.rl_mini_batch_size", "33",
                    "--data.init_args.data_path", "synthetic:arithmetic?n=64&seed=0",
                    "--data.init_args.valid_path", "synthetic:arithmetic?n=64&seed=0",
                    "--trainer.max_steps", "1", "--trainer.enable_progress_bar", "false",
                    "--trainer.default_root_dir", str(tmp_path)])
    errors = [line for line in capsys.readouterr().err.splitlines() if "aitrain: error" in line]
    assert code == 2 and len(errors) == 1 and "rl_mini_batch_size" in errors[0], errors
