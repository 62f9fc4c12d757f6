"""Model references: builtin, local directory, run directory, missing paths; builtin sizes."""

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import (
    BUILTIN_CONFIGS,
    load_model,
    load_tokenizer,
    materialize_builtin,
    prepare_for_training,
    resolve_model_ref,
)


def test_builtin_is_deterministic_and_offline():
    first, second = load_model("builtin:tiny"), load_model("builtin:tiny")
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q)
    assert type(first).__name__ == "LlamaForCausalLM"


@pytest.mark.parametrize(("name", "low", "high"), [("tiny", 0.5e6, 1.5e6), ("small", 25e6, 35e6)])
def test_builtin_sizes(name, low, high):
    params = sum(p.numel() for p in load_model(f"builtin:{name}").parameters())
    assert low < params < high


def test_builtin_tokenizer_splits_digits():
    tokenizer = load_tokenizer("builtin:tiny")
    tokens = tokenizer.tokenize("12345 apples")
    assert [t for t in tokens if t.strip("Ġ").isdigit()] == ["1", "2", "3", "4", "5"]
    assert tokenizer.pad_token is not None and tokenizer.eos_token == "</s>"


def test_local_directory_loads_like_the_builtin(tmp_path):
    model = load_model("builtin:tiny")
    model.save_pretrained(tmp_path / "m")
    load_tokenizer("builtin:tiny").save_pretrained(tmp_path / "m")
    reloaded = load_model(str(tmp_path / "m"))
    ids = torch.randint(5, 4000, (1, 9))
    torch.testing.assert_close(reloaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_run_directory_resolves_to_its_export(tmp_path):
    source = materialize_builtin("builtin:tiny")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "export").symlink_to(source, target_is_directory=True)
    assert resolve_model_ref(str(tmp_path / "run")).source.endswith("export")


def test_missing_paths_and_unknown_builtins_fail_clearly(tmp_path):
    with pytest.raises(AutotrainError, match="does not exist"):
        resolve_model_ref(str(tmp_path / "nope"))
    with pytest.raises(AutotrainError, match="builtin:tiny"):
        resolve_model_ref("builtin:huge")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutotrainError, match="no config.json"):
        resolve_model_ref(str(tmp_path / "empty"))


def test_offline_hub_id_fails_with_one_line():
    with pytest.raises(AutotrainError, match="could not load"):
        load_model("some-org/some-model-that-is-not-cached")


def test_quantized_models_load_frozen_and_train_only_with_lora():
    """Loading and preparing for training are separate: a frozen model (a teacher, a reference)
    loads quantized as is, while training a quantized base needs a LoRA adapter."""
    frozen = load_model("builtin:tiny", quantization={"bits": 4})
    assert frozen.is_loaded_in_4bit
    with pytest.raises(AutotrainError, match="QLoRA"):
        prepare_for_training(frozen)
    trainable = prepare_for_training(frozen, lora={"r": 4, "alpha": 8})
    assert any(p.requires_grad for p in trainable.parameters())


def test_lora_all_linear_trains_only_adapters():
    model = load_model("builtin:tiny", lora={"r": 4, "alpha": 8})
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("mlp" in n for n in trainable) and any("self_attn" in n for n in trainable)


def test_embeddings_grow_for_added_tokens():
    from autotrain_pl.models import resize_embeddings

    model = load_model("builtin:tiny")
    size = model.get_input_embeddings().weight.shape[0]
    assert resize_embeddings(model, size + 3)
    assert model.get_output_embeddings().weight.shape[0] == size + 3
    assert not resize_embeddings(model, size)


def test_builtin_configs_are_4bit_friendly():
    for config in BUILTIN_CONFIGS.values():
        assert config["hidden_size"] % 64 == 0 and config["intermediate_size"] % 64 == 0
