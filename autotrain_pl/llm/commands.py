"""``aitrain llm``: the "aitraining" guide's command line on our engine.

It translates the flags into the config ``aitrain fit`` runs, writes it to
``<project-name>/llm_config.yaml`` and runs ``aitrain fit --config`` on it (there is no second
training path); ``--use-sweep`` runs ``aitrain sweep`` over that config and ``--inference-mode``
runs ``aitrain generate``. ``--print-config`` prints the config instead of running it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from autotrain_pl.commands import SUBCOMMANDS
from autotrain_pl.errors import AutotrainError


@SUBCOMMANDS.register("llm")
def llm_command(argv: Sequence[str]) -> int:
    """Translate and run; a user error prints one line and returns 2."""
    from autotrain_pl.llm.translate import CONFIG_NAME, SWEEP_CONFIG_NAME, translate

    try:
        run = translate(argv)
        if run.mode == "help":
            from autotrain_pl.llm.helptext import help_text

            print(help_text(run.help_trainer))
            return 0
        if run.print_config:
            sys.stdout.write(run.printed())
            return 0
        if run.mode == "inference":
            from autotrain_pl.generation.commands import generate_command

            return generate_command(run.generate_argv or [])
        project = Path(run.project or ".")
        if run.mode == "fit":
            _check_project(project, run.config or {})
        project.mkdir(parents=True, exist_ok=True)
        config_path = project / CONFIG_NAME
        config_path.write_text(run.fit_yaml(), encoding="utf-8")
        if run.mode == "sweep":
            return _sweep(run, project / SWEEP_CONFIG_NAME)
    except AutotrainError as error:
        print(f"aitrain: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    from autotrain_pl.cli import run_cli

    print(f"aitrain llm: running aitrain fit --config {config_path}", file=sys.stderr)
    return run_cli(["fit", "--config", str(config_path)])


def _check_project(project: Path, config: dict) -> None:
    """Refuse before ``llm_config.yaml`` is replaced when the folder holds a run this command
    would not resume or overwrite (``aitrain fit`` would refuse it too, after the fact)."""
    from autotrain_pl.cli import RUN_ARTIFACTS

    held = [name for name in RUN_ARTIFACTS if (project / name).is_file() or
            (project / name).is_dir() and any((project / name).iterdir())]
    if held and not config.get("overwrite") and not config.get("ckpt_path"):
        raise AutotrainError(
            f"{project} already holds a run ({', '.join(held)}); pass --overwrite to replace it, "
            f"--load-state-from {project / 'checkpoints' / 'last.ckpt'} to resume it, or choose "
            "a new --project-name")


def _sweep(run, sweep_path: Path) -> int:
    """Run the sweep; the best trial's export becomes ``<project-name>/export``."""
    from autotrain_pl.llm.sweep import copy_best_export
    from autotrain_pl.sweep.runner import SweepSettings, run_fit_sweep

    sweep_path.write_text(run.sweep_yaml(), encoding="utf-8")
    print(f"aitrain llm: running aitrain sweep --config {sweep_path}", file=sys.stderr)
    result = run_fit_sweep(SweepSettings.from_mapping(run.sweep, source=sweep_path))
    export = copy_best_export(run.project, result.best_trial)
    if export is None:
        raise AutotrainError("the sweep finished without a successful trial; see the table "
                             "above for each trial's reason")
    print(f"aitrain llm: best trial {result.best_trial} exported to {export}", file=sys.stderr)
    return 0
