"""``--use-sweep``: our optuna sweep (``autotrain_pl.sweep``) over the translated fit config.

The guide's ``--sweep-params`` name parameters as its flags do (``lr``, ``batch_size``,
``lora_r``...); each becomes the dotted key that flag set in this config
(``model.init_args.learning_rate``). A dotted key is taken as is. Trials run in
``<project-name>/trial_<n>``; the best trial's export is copied to ``<project-name>/export``.
"""

from __future__ import annotations

import difflib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.llm.build import ConfigBuilder
from autotrain_pl.llm.context import Context
from autotrain_pl.llm.flags import BY_NAME

#: Python-style names of the guide's sweep examples -> the flag they mean.
PARAMETER_ALIASES = {"learning-rate": "lr", "num-epochs": "epochs", "num-train-epochs": "epochs",
                     "per-device-train-batch-size": "batch-size", "dropout": "lora-dropout",
                     "beta": "dpo-beta", "temperature": "distill-temperature",
                     "alpha": "distill-alpha"}


def sweep_settings(ctx: Context, builder: ConfigBuilder, project: str) -> dict[str, Any]:
    """The ``aitrain sweep`` settings (``SweepSettings`` keys) of this command line, checked."""
    from autotrain_pl.sweep.runner import SweepSettings

    params = ctx.args.value("sweep-params")
    if params is None:
        raise AutotrainError("--use-sweep needs --sweep-params, e.g. '{\"lr\": [1e-5, 1e-3, "
                             "\"log_uniform\"], \"batch_size\": [4, 8, 16]}'")
    if not isinstance(params, Mapping) or not params:
        raise AutotrainError("--sweep-params: give a JSON object of parameter to range, e.g. "
                             "'{\"lr\": [1e-5, 1e-3, \"log_uniform\"]}'")
    config = builder.config
    data = config.get("data", {}).get("init_args", {})
    if not any(data.get(k) for k in ("valid_path", "valid_split", "valid_fraction")) and \
            config.get("trainer", {}).get("limit_val_batches") != 0:
        raise AutotrainError("--use-sweep scores each trial on validation data, and there is "
                             "none: add a valid.jsonl (or validation.csv) next to train in "
                             "--data-path, or give --valid-split")
    space = {search_key(str(name), ctx, builder): spec for name, spec in params.items()}
    settings = {
        "base_config": config,
        "search_space": space,
        "metric": ctx.setting("sweep-metric"),
        "direction": ctx.setting("sweep-direction"),
        "n_trials": ctx.setting("sweep-n-trials"),
        "sampler": ctx.setting("sweep-backend"),
        "seed": config.get("seed_everything"),
        "sweep_dir": project,
    }
    checked = SweepSettings.from_mapping(settings)  # metric, sampler, direction, trials
    settings.update(metric=checked.metric, sampler=checked.sampler)
    return settings


def search_key(name: str, ctx: Context, builder: ConfigBuilder) -> str:
    """The dotted config key a ``--sweep-params`` name stands for."""
    if "." in name:
        return name
    flag_name = name.replace("_", "-")
    flag_name = PARAMETER_ALIASES.get(flag_name, flag_name)
    flag = BY_NAME.get(flag_name)
    if flag is None:
        near = difflib.get_close_matches(flag_name, [*BY_NAME, *PARAMETER_ALIASES], n=1,
                                         cutoff=0.5)
        hint = f"; did you mean {near[0].replace('-', '_')}?" if near else ""
        raise AutotrainError(f"--sweep-params {name}: not a flag of aitrain llm{hint} (or give "
                             "a dotted config key such as model.init_args.learning_rate)")
    keys = builder.keys_set_by(f"--{flag.name}")
    if len(keys) != 1:
        why = "it sets no key in this run" if not keys else "it sets several keys"
        need = f" (it needs --{flag.needs})" if flag.needs and not ctx.on(flag.needs) else ""
        raise AutotrainError(f"--sweep-params {name}: cannot sweep --{flag.name}: {why}{need}; "
                             "give a dotted config key instead (aitrain llm ... --print-config "
                             "shows them)")
    value = ctx.setting(flag.name)
    if builder.get(keys[0]) != value:
        raise AutotrainError(f"--sweep-params {name}: --{flag.name}'s values are translated "
                             f"({value!r} -> {builder.get(keys[0])!r}); sweep {keys[0]} with "
                             "our values instead")
    return keys[0]


def copy_best_export(sweep_dir: str, best_trial: int | None) -> Path | None:
    """Copy the best trial's export to ``<sweep_dir>/export`` (what a plain run leaves there)."""
    if best_trial is None:
        return None
    source = Path(sweep_dir) / f"trial_{best_trial}" / "export"
    if not source.is_dir():
        return None
    target = Path(sweep_dir) / "export"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target
