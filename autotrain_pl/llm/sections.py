"""Translations of the flags that do not map one to one: the data layout and columns, the
objective, distillation, RL environments and rewards, the optimizer-step policy, logging,
checkpoints and evaluation (custom losses: ``loss.py``). Each section reads the ``Context``
and writes keys into the ``ConfigBuilder``, naming the flag that set each key."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from autotrain_pl.data.sources import looks_local
from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm import values
from autotrain_pl.llm.build import NULL, ConfigBuilder
from autotrain_pl.llm.context import Context
from autotrain_pl.llm.spec import PAIR_TRAINERS

M = "model.init_args."
D = "data.init_args."
OBJECTIVES = {
    "sft": "SFTModule", "default": "SFTModule", "distillation": "DistillationModule",
    "dpo": "DPOModule", "orpo": "DPOModule", "reward": "RewardModule", "ppo": "PPOModule",
    "grpo": "GRPOModule",
}
#: Columns a row format reads by name: a --text-column naming one needs no renaming.
FORMAT_COLUMNS = frozenset({"text", "messages", "conversations", "prompt", "completion",
                            "chosen", "rejected", "instruction", "output"})
#: Split names ``datasets`` files under "validation" (valid.jsonl, dev.csv, ...).
VALIDATION_NAMES = frozenset({"valid", "validation", "val", "dev", "eval"})
#: The guide's RL environment names -> ours (None: decided by the reward flags).
RL_ENVIRONMENTS = {"text_generation": None, "multi_objective": "qa"}


def objective(b: ConfigBuilder, ctx: Context) -> None:
    """The objective class, its export mode and what the trainer name implies."""
    b.set("model.class_path", f"autotrain_pl.objectives.{OBJECTIVES[ctx.trainer]}", "--trainer")
    b.set("data.class_path", "autotrain_pl.data.ChatDataModule", "--trainer")
    if ctx.trainer == "orpo":
        b.set(f"{M}loss_type", "orpo", "--trainer")
    if not ctx.on("peft"):  # with --peft: --merge-adapter (merged by default) decides
        b.set(f"{M}export_mode", "full", "--peft", explicit=False)


def data(b: ConfigBuilder, ctx: Context) -> None:
    """``--data-path``: a folder of split files (train.jsonl, valid.csv ...), a file, a dataset
    name or a ``synthetic:`` reference; ``--train-split``/``--valid-split`` pick the splits."""
    path = ctx.setting("data-path")
    if not path:
        raise AutotrainError("--data-path is required: a folder with train.jsonl/train.csv (and "
                             "optionally valid.jsonl), a data file, or a dataset name")
    b.set(f"{D}data_path", path, "--data-path")
    train, valid = ctx.setting("train-split"), ctx.args.value("valid-split")
    local = Path(path).expanduser()
    if not local.exists() and looks_local(path):
        raise AutotrainError(f"--data-path {path} does not exist; give a folder with "
                             "train.jsonl/train.csv, a data file, or a dataset name")
    if local.is_file():
        for name in ("train-split", "valid-split"):
            if ctx.given(name) and not (name == "train-split" and train == "train"):
                raise AutotrainError(f"--{name} picks a split of a folder or a dataset; "
                                     f"--data-path {path} is one file")
        return
    if local.is_dir():
        splits = _folder_splits(local)
        if train not in splits:
            raise AutotrainError(f"--train-split {train}: {path} has no {train} files (found "
                                 f"splits: {', '.join(splits) or 'none'}); name the files "
                                 "train.jsonl / valid.jsonl or set --train-split")
        if valid is not None:
            valid = _validation_split(valid, splits, path)
        elif "validation" in splits:
            b.set(f"{D}valid_split", "validation", "--data-path", explicit=False)
    if train != "train":
        b.set(f"{D}split", train, "--train-split")
    b.set(f"{D}valid_split", valid, "--valid-split")


def _folder_splits(folder: Path) -> list[str]:
    from datasets.data_files import get_data_patterns

    try:
        return [str(split) for split in get_data_patterns(str(folder))]
    except Exception:  # no data files at all: the data module says so, naming the folder
        return []


def _validation_split(name: str, splits: list[str], path: str) -> str:
    if name in splits:
        return name
    if name.lower() in VALIDATION_NAMES and "validation" in splits:
        return "validation"  # datasets files valid/val/dev under "validation"
    raise AutotrainError(f"--valid-split {name}: {path} has no such split (found: "
                         f"{', '.join(splits)})")


def columns(b: ConfigBuilder, ctx: Context) -> None:
    """``--text-column`` and friends as ``column_mapping``: the named columns are renamed to the
    ones our row formats read (text, prompt/completion, prompt/chosen/rejected)."""
    text = ctx.args.value("text-column")
    prompt = ctx.args.value("prompt-text-column")
    rejected = ctx.args.value("rejected-text-column")
    if ctx.trainer in PAIR_TRAINERS:
        targets = {prompt: "prompt", text: "chosen", rejected: "rejected"}
    elif prompt is not None:
        targets = {prompt: "prompt", text: "completion"}
    elif text is not None and text not in FORMAT_COLUMNS:
        targets = {text: "text"}
    else:
        targets = {}
    mapping = {old: new for old, new in targets.items() if old is not None and old != new}
    if mapping:
        b.set(f"{D}column_mapping", mapping, "--text-column")


def max_length(b: ConfigBuilder, ctx: Context) -> None:
    """The guide's three lengths are our one ``max_length`` (two that differ are an error);
    --block-size -1 means unset."""
    block = ctx.args.value("block-size")
    if block is not None and block > 0:
        b.set(f"{D}max_length", block, "--block-size")
    b.set(f"{D}max_length", ctx.args.value("model-max-length"), "--model-max-length")


def chat_format(b: ConfigBuilder, ctx: Context) -> None:
    """--chat-format over --chat-template (the guide's rule); names checked here so that a
    format we do not have fails before anything loads."""
    for name in ("chat-format", "chat-template"):
        if not ctx.given(name):
            continue
        value = ctx.args.value(name)
        converted = values.chat_format(value)
        if converted is not None:
            _check_chat_format(name, value, converted)
            b.set(f"{D}chat_format", converted, f"--{name}")
        return


def _check_chat_format(flag: str, value: str, name: str) -> None:
    from autotrain_pl.rendering.registry import CHAT_FORMATS

    if "." in name or name.lower() in CHAT_FORMATS:
        return
    known = ", ".join(sorted(CHAT_FORMATS.names()))
    raise AutotrainError(f"--{flag} {value}: not supported; our chat formats are {known} "
                         "(tokenizer: the model's own template), or a Renderer by import path")


def seed(b: ConfigBuilder, ctx: Context) -> None:
    value = ctx.setting("seed")
    explicit = ctx.given("seed")
    b.set("seed_everything", value, "--seed", explicit)
    b.set(f"{D}seed", value, "--seed", explicit)


def distillation(b: ConfigBuilder, ctx: Context) -> None:
    """--use-distillation on SFT (``use_distillation``, ``teacher_model``, ``distillation``)."""
    if not ctx.on("use-distillation"):
        return
    if not ctx.setting("teacher-model"):
        raise AutotrainError("--use-distillation needs --teacher-model (the teacher reference; "
                             "it must share the student's tokenizer)")
    if ctx.trainer != "distillation":
        b.set(f"{M}use_distillation", True, "--use-distillation")


def rl(b: ConfigBuilder, ctx: Context) -> None:
    """The guide's environment and reward flags as our ``rl_env_type`` and ``rl_reward_fn``."""
    if not ctx.manual_optimization:
        return
    env = ctx.args.value("rl-env-type")
    reward_model = ctx.args.value("rl-reward-model-path")
    reward_fn = ctx.args.value("rl-reward-fn")
    weights = ctx.args.value("rl-reward-weights")
    if ctx.args.value("rl-multi-objective") and weights is None:
        raise AutotrainError("--rl-multi-objective mixes rewards by --rl-reward-weights; add "
                             "it, e.g. '{\"correctness\": 1.0, \"format\": 0.1}'")
    if env == "preference_comparison":
        raise AutotrainError("--rl-env-type preference_comparison: not supported; train a reward "
                             "model on the pairs (--trainer reward) and give it with "
                             "--rl-reward-model-path")
    if env in RL_ENVIRONMENTS or env is None:
        if env == "multi_objective" and weights is None:
            raise AutotrainError("--rl-env-type multi_objective needs --rl-reward-weights")
        env = "reward_model" if reward_model else ("qa" if reward_fn or weights else None)
        if env is None:
            raise AutotrainError(f"--trainer {ctx.trainer} needs a reward: "
                                 "--rl-reward-model-path (a reward model, e.g. from --trainer "
                                 "reward) or --rl-reward-fn (correctness, format, "
                                 "length_penalty, or an import path)")
    b.set(f"{M}rl_env_type", env, "--rl-env-type")
    b.set(f"{M}rl_reward_model_path", reward_model, "--rl-reward-model-path")
    if reward_fn == "custom":
        raise AutotrainError("--rl-reward-fn custom: give the reward as an import path instead "
                             "(my_pkg.rewards.judge); we never eval code strings")
    reward_fn = None if reward_fn == "default" else reward_fn
    if weights is not None:
        if not isinstance(weights, dict) or not weights:
            raise AutotrainError("--rl-reward-weights: give a JSON object of reward name to "
                                 "weight, e.g. '{\"correctness\": 1.0, \"format\": 0.1}'")
        if reward_fn is not None and reward_fn not in weights:
            raise AutotrainError(f"--rl-reward-fn {reward_fn} is not in --rl-reward-weights "
                                 f"({', '.join(weights)}); name it there, or drop one")
        b.set(f"{M}rl_reward_fn", dict(weights), "--rl-reward-weights")
    else:
        b.set(f"{M}rl_reward_fn", reward_fn, "--rl-reward-fn")


def steps(b: ConfigBuilder, ctx: Context) -> None:
    """Gradient accumulation and clipping: Lightning's keys; StepControlCallback with
    --use-forward-backward / --manual-optimizer-control; the objective's own max_grad_norm on
    PPO/GRPO, which step themselves."""
    clip, clip_flag = _one_of(ctx, "grad-clip-value", "max-grad-norm")
    clip = None if clip is not None and clip <= 0 else clip
    manual = ctx.args.value("use-forward-backward") or ctx.args.value("manual-optimizer-control")
    if ctx.given("optimizer-step-frequency") and not manual:
        raise AutotrainError("--optimizer-step-frequency applies with --use-forward-backward or "
                             "--manual-optimizer-control (plain runs: --gradient-accumulation)")
    if ctx.manual_optimization:
        b.set(f"{M}max_grad_norm", NULL if clip is None else clip, clip_flag,
              explicit=ctx.given(clip_flag[2:]))
        return
    names = ("optimizer-step-frequency", "gradient-accumulation-steps", "gradient-accumulation")
    every, every_flag = _one_of(ctx, *names)
    if manual:
        every = every if ctx.given(every_flag[2:]) else 1
        b.append("trainer.callbacks", {
            "class_path": "autotrain_pl.callbacks.StepControlCallback",
            "init_args": {"optimizer_step_frequency": every, "gradient_clip_norm": clip}})
        return
    b.set("trainer.accumulate_grad_batches", every, every_flag,
          explicit=ctx.given(every_flag[2:]))
    b.set("trainer.gradient_clip_val", clip, clip_flag, explicit=ctx.given(clip_flag[2:]))


def _one_of(ctx: Context, *names: str) -> tuple[Any, str]:
    """The value of the first of ``names`` given (or defaulted); two given values that differ
    are an error naming both."""
    given = [(name, ctx.args.value(name)) for name in names if ctx.given(name)]
    if len({repr(value) for _, value in given}) > 1:
        (first, a), (second, c) = given[0], given[1]
        raise AutotrainError(f"--{first} {a} and --{second} {c} set the same thing; keep one")
    if given:
        return given[0][1], f"--{given[0][0]}"
    for name in names:
        value = ctx.setting(name)
        if value is not None:
            return value, f"--{name}"
    return None, f"--{names[-1]}"


def logger(b: ConfigBuilder, ctx: Context, project: str) -> None:
    """--log and --logging-steps: Lightning loggers writing into the project folder."""
    kind = ctx.args.value("log")
    steps_ = ctx.args.value("logging-steps")
    if steps_ is not None and steps_ > 0:
        b.set("trainer.log_every_n_steps", steps_, "--logging-steps")
    if kind in (None, "none", "csv"):
        return
    loggers = {
        "wandb": ("wandb", {"class_path": "lightning.pytorch.loggers.WandbLogger",
                            "init_args": {"save_dir": project, "project": Path(project).name}}),
        "tensorboard": ("tensorboard", {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": project, "name": "logs"}}),
        "mlflow": ("mlflow", {"class_path": "lightning.pytorch.loggers.MLFlowLogger",
                              "init_args": {"save_dir": f"{project}/mlruns"}}),
    }
    package, spec = loggers[kind]
    if importlib.util.find_spec(package) is None:
        raise AutotrainError(f"--log {kind} needs the {package} package: pip install {package} "
                             "(or --log tensorboard / none)")
    b.set("trainer.logger", spec, "--log")


def checkpoints(b: ConfigBuilder, ctx: Context) -> None:
    """--save-strategy/--save-steps/--save-state-every-n-steps as our resumable last.ckpt."""
    strategy = ctx.setting("save-strategy")
    if ctx.given("save-steps") and strategy != "steps":
        raise AutotrainError("--save-steps applies with --save-strategy steps")
    if strategy == "steps":
        b.set("checkpoint_every_n_steps", ctx.args.value("save-steps", 500), "--save-steps")
    elif strategy == "no":
        b.set("trainer.enable_checkpointing", False, "--save-strategy")
    every = ctx.args.value("save-state-every-n-steps")
    if every:
        b.set("checkpoint_every_n_steps", every, "--save-state-every-n-steps")


def evaluation(b: ConfigBuilder, ctx: Context) -> None:
    """--eval-strategy (when the loss is validated), --eval-steps, --eval-batch-size and the
    enhanced evaluation's extras (--custom-metrics)."""
    strategy = ctx.setting("eval-strategy")
    every = ctx.args.value("eval-steps")
    enhanced = ctx.on("use-enhanced-eval")
    if strategy == "steps":
        interval = every or ctx.args.value("logging-steps")
        if not interval or interval < 1:
            raise AutotrainError("--eval-strategy steps needs --eval-steps N (validate every N "
                                 "optimizer steps)")
        b.set("trainer.val_check_interval", interval, "--eval-steps")
        b.set("trainer.check_val_every_n_epoch", NULL, "--eval-strategy")
    elif strategy == "no":
        b.set("trainer.limit_val_batches", 0, "--eval-strategy")
    if every is not None and not enhanced and strategy != "steps":
        raise AutotrainError("--eval-steps applies with --use-enhanced-eval (generate every N "
                             "steps) or --eval-strategy steps (validate every N steps)")
    if enhanced:
        b.set(f"{M}use_enhanced_eval", True, "--use-enhanced-eval")
        b.set(f"{M}eval_steps", every, "--eval-steps")
        b.set(f"{M}eval_batch_size", ctx.setting("eval-batch-size"), "--eval-batch-size",
              explicit=ctx.given("eval-batch-size"))
        custom = ctx.args.value("custom-metrics")
        if custom is not None:
            try:
                extra = values.metric_list(custom)
            except ValueError as error:
                raise AutotrainError(f"--custom-metrics: {error}") from None
            given = b.get(f"{M}eval_metrics") if ctx.given("eval-metrics") else []
            merged = list(dict.fromkeys([*(given or []), *extra]))
            b.set(f"{M}eval_metrics", merged, "--eval-metrics")
    if ctx.given("eval-batch-size"):
        b.set(f"{D}eval_batch_size", ctx.args.value("eval-batch-size"), "--eval-batch-size")
