"""The trimmed last layer gives the full model's logits and gradients at trained positions."""

import pytest
import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from autotrain_pl.training.final_layer import last_layer, trimmed_last_layer
from autotrain_pl.training.tokens import causal_lm_parts, forward_trained_logits

SIZES = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
ARCHITECTURES = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
}


def make_model(arch: str = "llama", attn: str = "sdpa", seed: int = 0):
    config_cls, model_cls = ARCHITECTURES[arch]
    torch.manual_seed(seed)
    config = config_cls(**SIZES)
    config._attn_implementation = attn
    return model_cls(config).train()


def padded_batch(lengths, trained, left_pad=False, seed=0):
    """Rows of ``lengths`` real tokens, the last ``trained[i]`` of each carrying weight."""
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    weights = torch.zeros(len(lengths), width)
    for row, (n, k) in enumerate(zip(lengths, trained, strict=True)):
        cols = slice(width - n, width) if left_pad else slice(0, n)
        ids[row, cols] = torch.randint(1, 97, (n,), generator=g)
        mask[row, cols] = 1
        if k:
            end = width if left_pad else n
            weights[row, end - k:end] = torch.rand(k, generator=g) + 0.5
    return {"input_ids": ids, "attention_mask": mask, "loss_weights": weights}


def packed_batch():
    """Two samples per row with a block-diagonal additive mask and restarting positions."""
    ids = torch.randint(1, 97, (2, 12), generator=torch.Generator().manual_seed(3))
    position_ids = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4]])
    sample = torch.cumsum(position_ids == 0, dim=1)
    allowed = (sample[:, :, None] == sample[:, None, :]) & torch.ones(12, 12, dtype=torch.bool).tril()
    mask = torch.zeros(2, 1, 12, 12).masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)
    weights = torch.zeros(2, 12)
    weights[0, [3, 4, 10, 11]] = 1.0
    weights[1, [5, 6, 11]] = 1.0
    return {"input_ids": ids, "attention_mask": mask, "position_ids": position_ids, "loss_weights": weights}


def reference_logits(model, batch):
    """The plain full forward, read at the same trained positions."""
    with torch.no_grad():
        _, selection = forward_trained_logits(model, batch)  # only for the selection
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
    logits = model(**inputs, use_cache=False).logits
    return logits[selection.rows, selection.positions]


def assert_same_logits_and_grads(model, batch):
    probe = torch.Generator().manual_seed(7)
    reference = reference_logits(model, batch)
    weights = torch.randn(reference.shape, generator=probe)
    (reference * weights).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    logits, _ = forward_trained_logits(model, batch)
    torch.testing.assert_close(logits, reference, atol=2e-5, rtol=1e-4)
    (logits * weights).sum().backward()
    got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == expected.keys()
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, atol=2e-5, rtol=1e-4, msg=name)


def mlp_widths(model, batch):
    """Sequence widths the last layer's MLP ran on (proves which path ran)."""
    widths = []
    decoder, _ = causal_lm_parts(model)
    handle = decoder.layers[-1].mlp.register_forward_hook(lambda m, args, out: widths.append(args[0].shape[1]))
    try:
        forward_trained_logits(model, batch)
    finally:
        handle.remove()
    return widths


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_right_padded_batch_matches_full_forward(arch, attn):
    model = make_model(arch, attn)
    batch = padded_batch([11, 7, 14, 9], trained=[3, 2, 4, 0])  # one row trains nothing
    assert mlp_widths(model, batch) == [4]  # at most 4 trained positions per row, not 14
    assert_same_logits_and_grads(model, batch)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_left_padded_and_unpadded_batches_match(attn):
    model = make_model("llama", attn)
    assert_same_logits_and_grads(model, padded_batch([6, 13, 10], trained=[2, 5, 1], left_pad=True))
    model.zero_grad(set_to_none=True)
    unpadded = padded_batch([12, 12], trained=[3, 6])  # sdpa passes no mask to the layers here
    assert mlp_widths(model, unpadded) == [6]
    assert_same_logits_and_grads(model, unpadded)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_rows_keep_their_sample_boundaries(attn):
    model = make_model("llama", attn)
    batch = packed_batch()
    assert mlp_widths(model, batch) == [4]
    assert_same_logits_and_grads(model, batch)


def test_padding_free_rows_from_position_ids():
    model = make_model("llama", "sdpa")
    batch = packed_batch()
    batch = {**batch, "attention_mask": None}
    batch = {k: v for k, v in batch.items() if v is not None}
    assert_same_logits_and_grads(model, batch)


def test_lora_and_gradient_checkpointing_models_match():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(make_model(), LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0))
    torch.manual_seed(1)
    for name, param in model.named_parameters():  # non-zero B so every LoRA weight gets gradient
        if "lora_B" in name:
            param.data.normal_(std=0.1)
    batch = padded_batch([9, 12], trained=[2, 3])
    assert mlp_widths(model, batch) == [3]
    assert_same_logits_and_grads(model, batch)

    checkpointed = make_model()
    checkpointed.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    assert_same_logits_and_grads(checkpointed, batch)


def test_mostly_trained_rows_run_the_original_layer():
    model = make_model()
    batch = padded_batch([20, 20], trained=[20, 20])  # all 19 computed columns predict targets
    assert mlp_widths(model, batch) == [19]
    assert_same_logits_and_grads(model, batch)


def test_columns_after_the_last_trained_position_are_not_computed():
    model = make_model()
    batch = padded_batch([14, 9], trained=[0, 3])  # trains up to column 8; column 13 is padding
    decoder, _ = causal_lm_parts(model)
    widths = []
    handle = decoder.layers[0].register_forward_hook(lambda m, args, out: widths.append(out.shape[1]))
    try:
        forward_trained_logits(model, batch)
    finally:
        handle.remove()
    assert widths == [8]  # the logits at column 7 predict the last target, at column 8
    assert_same_logits_and_grads(model, batch)


def test_layer_is_restored_even_when_the_forward_fails():
    model = make_model()
    decoder, _ = causal_lm_parts(model)
    original = decoder.layers[-1]
    rows, positions = torch.tensor([0]), torch.tensor([1])
    with pytest.raises(RuntimeError), trimmed_last_layer(decoder, rows, positions):
        assert decoder.layers[-1] is not original
        raise RuntimeError("boom")
    assert decoder.layers[-1] is original
    assert list(model.state_dict()) == list(make_model().state_dict())


def test_unsupported_attention_is_left_alone():
    model = make_model("llama", "sdpa")
    model.config._attn_implementation = "flash_attention_2"
    decoder, _ = causal_lm_parts(model)
    assert last_layer(decoder) is None
