"""``aitrain sweep --config configs/sweep.yaml``: run, join or resume a sweep of fit configs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from autotrain_pl.commands import SUBCOMMANDS
from autotrain_pl.errors import AutotrainError

#: flags that replace the sweep YAML's key of the same name, with their types
OVERRIDES: dict[str, type] = {"n_trials": int, "timeout": float, "sampler": str, "pruner": str,
                              "storage": str, "study_name": str, "sweep_dir": str,
                              "isolation": str, "metric": str, "direction": str}


@SUBCOMMANDS.register("sweep")
def sweep_command(argv: Sequence[str]) -> int:
    """Run trials of the sweep until its study holds n_trials; start the same command on other
    machines (with a shared --storage) to add workers, or again to resume."""
    parser = argparse.ArgumentParser(
        prog="aitrain sweep",
        description="Hyperparameter sweep (optuna) over the dotted keys of a fit config. The "
        "sweep YAML's keys: base_config, search_space, fixed, metric, direction, n_trials, "
        "timeout, sampler, pruner, seed, storage, study_name, sweep_dir, isolation.")
    parser.add_argument("--config", required=True, help="the sweep YAML (configs/sweep.yaml)")
    for name, kind in OVERRIDES.items():
        parser.add_argument(f"--{name}", type=kind, help=f"replaces the YAML's {name}")
    parser.add_argument("--fixed", action="append", default=[], metavar="KEY=VALUE",
                        help="set a fit-config key in every trial, over the YAML's fixed "
                        "(repeatable), e.g. --fixed trainer.max_steps=20")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    from autotrain_pl.sweep.runner import load_settings, run_fit_sweep

    overrides = {name: getattr(args, name) for name in OVERRIDES}
    try:
        settings = load_settings(args.config, overrides)
        settings.fixed = {**(settings.fixed or {}), **_fixed_values(args.fixed)}
        run_fit_sweep(settings)
    except AutotrainError as error:
        print(f"aitrain: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


def _fixed_values(items: Sequence[str]) -> dict[str, object]:
    """``--fixed key=value`` pairs, each value read as YAML (``20`` is a number, ``null`` None)."""
    import yaml

    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise AutotrainError(f"--fixed {item!r}: write KEY=VALUE, e.g. "
                                 "--fixed trainer.max_steps=20")
        values[key] = yaml.safe_load(raw)
    return values
