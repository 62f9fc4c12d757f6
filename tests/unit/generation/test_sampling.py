import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"top_k": -1}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"typical_p": 0.0}, "typical_p"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"num_beams": 0}, "num_beams"),
        ({"num_beams": 2, "num_return_sequences": 3}, "num_return_sequences"),
        ({"num_beams": 4, "temperature": 0.7}, "temperature"),
        ({"num_beams": 4, "top_p": 0.9}, "top_p"),
        ({"num_beams": 4, "top_k": 20}, "top_k"),
        ({"num_beams": 4, "stop": ["\n"]}, "stop"),
        ({"temperature": 0, "num_return_sequences": 2}, "num_return_sequences"),
        ({"temperature": 0, "top_p": 0.9}, "top_p"),
        ({"temperature": 0, "min_p": 0.1}, "min_p"),
        ({"stop": [""]}, "stop"),
        ({"stop": [[1, "a"]]}, "stop"),
        ({"min_new_tokens": 10, "max_new_tokens": 5}, "min_new_tokens"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_combinations_name_the_field(options, field):
    with pytest.raises(AutotrainError, match=field):
        SamplingConfig(**options)


def test_temperature_default_depends_on_beam_search():
    assert SamplingConfig().temperature == 1.0
    assert SamplingConfig(num_beams=4, num_return_sequences=2).temperature == 0.0


def test_stop_is_normalized_and_config_hashable():
    config = SamplingConfig(stop=["\n\n", 5, [7, 8]])
    assert config.stop == ("\n\n", 5, (7, 8))
    assert config.stop_strings == ("\n\n",)
    assert config.stop_token_sequences == ((5,), (7, 8))
    assert hash(config) == hash(SamplingConfig(stop=("\n\n", 5, (7, 8))))
    assert SamplingConfig(stop="END").stop == ("END",)


def test_to_generation_config_sampling():
    config = SamplingConfig(max_new_tokens=7, temperature=0.7, top_k=20, top_p=0.9, min_p=0.05,
                            num_return_sequences=3, repetition_penalty=1.1)
    gen = config.to_generation_config()
    assert gen.do_sample and gen.temperature == 0.7 and gen.top_k == 20 and gen.top_p == 0.9
    assert gen.min_p == 0.05 and gen.num_return_sequences == 3 and gen.max_new_tokens == 7
    assert gen.repetition_penalty == 1.1


def test_to_generation_config_sets_neutral_values_so_model_defaults_cannot_leak():
    gen = SamplingConfig(temperature=0.5).to_generation_config()
    assert gen.top_k == 0 and gen.top_p == 1.0 and gen.typical_p == 1.0


def test_to_generation_config_greedy_and_beams():
    greedy = SamplingConfig(temperature=0).to_generation_config()
    assert greedy.do_sample is False and greedy.num_beams == 1
    beams = SamplingConfig(num_beams=3, num_return_sequences=2).to_generation_config()
    assert beams.do_sample is False and beams.num_beams == 3 and beams.num_return_sequences == 2


def test_to_dict_is_json_friendly():
    import json

    data = SamplingConfig(stop=["x", [1, 2]], seed=3).to_dict()
    assert json.loads(json.dumps(data))["stop"] == ["x", [1, 2]]
