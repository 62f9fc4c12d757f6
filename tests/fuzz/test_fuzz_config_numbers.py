"""Out-of-range numbers in every numeric option: refused in one line that names the key, before a
model loads.

Every option (``fuzz_options.numeric_options``, read from the init signatures) is tried directly
on the class that checks it, which is cheap; a sample of them goes through ``aitrain fit`` in this
process, as a flag (``--key=value``) or in a YAML config, where the error must also be the one
line of a user error with exit code 2.
"""

from __future__ import annotations

import inspect
import itertools

import pytest
import yaml
from fuzz_harness import (
    BASE_ARGV,
    CASES,
    ModelLoadReached,
    _no_model_loads,
    assert_user_error,
    fuzz_settings,
    run_aitrain,
)
from fuzz_options import (
    DATA,
    RANGES,
    Option,
    bad_values,
    edge_values,
    numeric_options,
    signature_options,
)
from hypothesis import given
from hypothesis import strategies as st

from autotrain_pl.errors import AutotrainError

OPTIONS = numeric_options()
#: Inputs through ``aitrain`` in CI (about 0.35 s each); every option is tried directly anyway.
CI_CLI_EXAMPLES = 20
_numbers = itertools.count()


def _cli_checks_run_numbers() -> bool:
    """Whether ``aitrain`` checks Trainer numbers before the model loads (``check_run_numbers``)."""
    from autotrain_pl import cli

    return "check_run_numbers" in inspect.getsource(cli)


WIRED = _cli_checks_run_numbers()


def test_every_numeric_option_has_a_declared_range():
    missing = sorted(f"{owner}.{name}" for owner, name in signature_options()
                     if (owner, name) not in RANGES)
    assert not missing, f"numeric options without a range in fuzz_options.RANGES: {missing}"


# -- each option, on the class that checks it --------------------------------------------------
def construct(option: Option, value) -> None:
    """Build what checks ``option`` with ``value`` (a model load raises ``ModelLoadReached``)."""
    import autotrain_pl.objectives as objectives
    from autotrain_pl.config_errors import check_run_numbers
    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.models import LoraOptions, QuantizationOptions

    if option.owner == "trainer":
        return check_run_numbers({"trainer": {option.name: value}})
    if option.owner == "run":
        return check_run_numbers({option.name: value})
    if option.owner == "data":
        ChatDataModule(data_path="synthetic:arithmetic?n=8", **{option.name: value})
        return None
    if option.owner in ("lora", "quantization"):
        record = LoraOptions if option.owner == "lora" else QuantizationOptions
        record(**{option.name: value})
        return None
    kwargs = {"model_name_or_path": "builtin:tiny", **option.context}
    if option.objective == "DistillationModule":
        kwargs["teacher_model"] = "builtin:tiny"
    kwargs[option.owner if option.owner.endswith("_sampling") else option.name] = value
    getattr(objectives, option.objective)(**kwargs)
    return None


def refused(option: Option, value) -> None:
    CASES["config:direct"] += 1
    try:
        with _no_model_loads():
            construct(option, value)
    except AutotrainError as error:
        message = str(error)
    except ModelLoadReached:
        pytest.fail(f"{option}={value!r}: nothing refused it before the model loaded")
    else:
        pytest.fail(f"{option}={value!r} was accepted")
    assert "\n" not in message, message
    for name in option.names:
        assert name in message, f"{option}={value!r}: the error does not name {name}: {message}"


@pytest.mark.parametrize("option", OPTIONS, ids=str)
def test_an_out_of_range_value_is_refused_by_its_check(option):
    """The values next to each bound and NaN/inf always, and random ones beyond the bounds."""
    for value in edge_values(option):
        refused(option, value)

    @fuzz_settings(2)
    @given(value=bad_values(option))
    def check(value) -> None:
        refused(option, value)

    check()


# -- through ``aitrain fit`` -----------------------------------------------------------------------
def _flow(value) -> str:
    """A value as YAML flow text, as jsonargparse reads a flag's value."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).split("\n...")[0].strip()


def _nested(option: Option, value) -> tuple[str, object]:
    """The init argument to set and its value (nested options as a whole mapping)."""
    if option.owner in ("lora", "quantization"):
        return option.owner, {option.name: value}
    if option.owner.endswith("_sampling"):
        return option.owner, value
    return option.name, value


def aitrain_argv(option: Option, value, as_yaml: bool, workdir) -> list[str]:
    objective = option.objective
    model_args = {"model_name_or_path": "builtin:tiny", **option.context}
    if objective == "DistillationModule":
        model_args["teacher_model"] = "builtin:tiny"
    data_args = {"data_path": DATA[objective]}
    trainer = {"default_root_dir": str(workdir / "run"), "max_steps": 1, "accelerator": "cpu"}
    top: dict = {}
    section = {"data": data_args, "trainer": trainer, "run": top}.get(option.owner, model_args)
    name, setting = _nested(option, value)
    if as_yaml:
        section[name] = setting
        config = {"model": {"class_path": f"autotrain_pl.objectives.{objective}",
                            "init_args": model_args},
                  "data": {"class_path": "autotrain_pl.data.ChatDataModule",
                           "init_args": data_args},
                  "trainer": trainer, **top}
        path = workdir / f"config{next(_numbers)}.yaml"
        path.write_text(yaml.safe_dump(config))
        return ["fit", "--config", str(path)]
    argv = ["fit", "--model", f"autotrain_pl.objectives.{objective}"]
    argv += [f"--model.init_args.{k}={_flow(v)}" for k, v in model_args.items()]
    argv += ["--data", "autotrain_pl.data.ChatDataModule",
             "--data.init_args.data_path", data_args["data_path"],
             "--trainer.default_root_dir", trainer["default_root_dir"], *BASE_ARGV]
    prefix = {"data": "data.init_args.", "trainer": "trainer.", "run": ""}.get(
        option.owner, "model.init_args.")
    return [*argv, f"--{prefix}{name}={_flow(setting)}"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_config")


CLI_OPTIONS = [o for o in OPTIONS if WIRED or o.owner not in ("trainer", "run")]


@fuzz_settings(CI_CLI_EXAMPLES)
@given(option=st.sampled_from(CLI_OPTIONS), data=st.data(), as_yaml=st.booleans())
def test_an_out_of_range_number_fails_in_one_line_through_aitrain(option, data, as_yaml,
                                                                   workdir):
    value = data.draw(bad_values(option), label=str(option))
    outcome = run_aitrain(aitrain_argv(option, value, as_yaml, workdir), f"config:{option.owner}")
    assert_user_error(outcome, names=option.names)


@pytest.mark.xfail(not WIRED, strict=True,
                   reason="cli.py must call config_errors.check_run_numbers in "
                          "before_instantiate_classes (issue 17 report)")
@pytest.mark.parametrize("flag", ["--trainer.max_steps=-5", "--trainer.gradient_clip_val=.nan",
                                  "--seed_everything=-1"])
def test_trainer_numbers_fail_before_the_model_loads(flag, workdir):
    option = Option("trainer", "max_steps", RANGES[("trainer", "max_steps")])
    argv = aitrain_argv(option, 1, False, workdir)[:-1] + [flag]
    outcome = run_aitrain(argv, "config:trainer")
    assert_user_error(outcome, names=[flag[2:].split("=")[0]])
