"""Search spaces: every accepted shape, the grid each range makes, and one-line errors."""

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.sweep.runner import SweepSettings, metric_key
from autotrain_pl.sweep.space import ParameterRange, grid_size, parse_range, parse_space


@pytest.mark.parametrize(("spec", "expected"), [
    ({"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
     ParameterRange("k", "float", low=1e-4, high=1e-2, log=True)),
    ({"low": 0.1, "high": 0.5}, ParameterRange("k", "float", low=0.1, high=0.5)),
    ({"type": "int", "low": 8, "high": 64, "step": 8},
     ParameterRange("k", "int", low=8, high=64, step=8)),
    ({"type": "categorical", "choices": [8, 16]}, ParameterRange("k", "categorical",
                                                                 choices=(8, 16))),
    ({"values": ["a", "b"]}, ParameterRange("k", "categorical", choices=("a", "b"))),
    ([8, 16, 32], ParameterRange("k", "categorical", choices=(8, 16, 32))),
    ([1e-5, 1e-3, "log_uniform"], ParameterRange("k", "log_uniform", low=1e-5, high=1e-3)),
    (["a", "b", "log_uniform"], ParameterRange("k", "categorical",
                                               choices=("a", "b", "log_uniform"))),
])
def test_every_shape_parses(spec, expected):
    assert parse_range("k", spec) == expected


def test_log_uniform_is_a_log_range():
    assert ParameterRange("lr", "log_uniform", low=1e-5, high=1e-2).log


@pytest.mark.parametrize(("spec", "needle"), [
    ({"type": "float", "low": 0.5, "high": 0.1}, "low=0.5 is above high=0.1"),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log range must stay above 0"),
    ({"type": "log_uniform", "low": -1.0, "high": 1.0}, "log range must stay above 0"),
    ({"type": "gaussian", "low": 0, "high": 1}, "unknown type 'gaussian'"),
    ({"type": "categorical", "choices": []}, "non-empty 'choices'"),
    ({"type": "float", "low": "a", "high": 1}, "'low' must be a number"),
    ({"type": "float", "low": 0, "high": 1, "stride": 2}, "unknown field(s) stride"),
    ({"type": "int", "low": 1, "high": 4, "step": 0}, "step must be > 0"),
])
def test_bad_ranges_name_the_key(spec, needle):
    with pytest.raises(AutotrainError) as error:
        parse_range("model.init_args.learning_rate", spec)
    message = str(error.value)
    assert needle in message and "model.init_args.learning_rate" in message
    assert "\n" not in message


def test_grid_values_enumerate_each_range():
    assert ParameterRange("a", "int", low=1, high=3).grid_values() == [1, 2, 3]
    assert ParameterRange("b", "float", low=0.1, high=0.3, step=0.1).grid_values() == \
        [0.1, 0.2, 0.3]
    assert ParameterRange("c", "int", low=8, high=32, step=8).grid_values() == [8, 16, 24, 32]
    assert grid_size(parse_space({"a": [1, 2], "b": {"type": "int", "low": 0, "high": 2}})) == 6
    with pytest.raises(AutotrainError, match="grid sampler needs a step"):
        ParameterRange("d", "float", low=0.0, high=1.0).grid_values()


def test_an_empty_space_is_refused():
    with pytest.raises(AutotrainError, match="search_space is empty"):
        parse_space({})


def test_seed_keys_map_onto_ours():
    settings = SweepSettings.from_mapping({
        "base_config": {"model": {}}, "sweep_backend": "optuna", "sweep_n_trials": 3,
        "sweep_metric": "eval_loss", "sweep_direction": "maximize",
        "sweep_params": '{"model.init_args.learning_rate": [1e-4, 1e-2, "log_uniform"]}'})
    assert (settings.sampler, settings.n_trials, settings.metric, settings.direction) == \
        ("tpe", 3, "val/loss", "maximize")
    assert parse_space(settings.search_space)[0].log
    assert metric_key("eval_accuracy") == "val/accuracy"


@pytest.mark.parametrize(("raw", "needle"), [
    ({"sampler": "bayes"}, "sampler='bayes' is not a sampler"),
    ({"sweep_backend": "ray"}, "sampler='ray' is not a sampler"),
    ({"direction": "down"}, "direction='down'"),
    ({"n_trials": 0}, "n_trials=0"),
    ({"samplr": "tpe"}, "unknown sweep key(s) samplr"),
    ({"sweep_params": "{not json"}, "sweep_params) is not JSON"),
    ({"sampler": "tpe", "sweep_backend": "grid"}, "sweep_backend and sampler both given"),
])
def test_bad_settings_are_one_line(raw, needle):
    with pytest.raises(AutotrainError) as error:
        SweepSettings.from_mapping({"base_config": {"model": {}},
                                    **({} if "sweep_params" in raw else {"search_space": {"a": [1]}}),
                                    **raw})
    assert needle in str(error.value) and "\n" not in str(error.value)
