"""The token-level loss registry: names, aliases, import paths, errors, teacher dispatch."""

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import (
    LossInputs,
    available_losses,
    entropy_loss,
    focal_loss,
    forward_kl,
    generalized_jsd,
    get_loss,
    importance_sampling_loss,
    kd_loss_topk,
    ppo_clip_loss,
    ref_kl_penalty,
    register_loss,
    reverse_kl,
    token_logprobs,
    weighted_cross_entropy,
)
from autotrain_pl.losses import registry as registry_module
from autotrain_pl.losses.cross_entropy import weighted_cross_entropy as wce_by_module


@pytest.fixture
def inputs(gen, make_batch):
    logits, labels, weights = make_batch(gen)
    teacher = torch.randn(logits.shape, generator=gen, dtype=logits.dtype)
    n = labels.shape[0]
    return LossInputs(
        logits=logits,
        labels=labels,
        loss_weights=weights,
        normalizer=4.0,
        teacher_logits=teacher,
        old_logprobs=-torch.rand(n, generator=gen, dtype=logits.dtype) * 3,
        ref_logprobs=-torch.rand(n, generator=gen, dtype=logits.dtype) * 3,
        advantages=torch.randn(n, generator=gen, dtype=logits.dtype),
    )


def test_builtin_names_are_registered():
    expected = {"ce", "cross_entropy", "focal", "entropy", "kl", "forward_kl", "reverse_kl"}
    expected |= {"jsd", "importance_sampling", "ppo", "ref_kl"}
    assert expected <= set(available_losses())
    assert get_loss("ce") is get_loss("cross_entropy")
    assert get_loss("kl") is get_loss("forward_kl")


def test_registered_losses_equal_the_functions(inputs):
    x, y, w, norm = inputs.logits, inputs.labels, inputs.loss_weights, inputs.normalizer
    t = inputs.teacher_logits
    logp = token_logprobs(x, y)
    cases = {
        "ce": (
            weighted_cross_entropy(x, y, w, normalizer=norm, label_smoothing=0.1),
            {"label_smoothing": 0.1},
        ),
        "focal": (focal_loss(x, y, w, gamma=1.0, normalizer=norm), {"gamma": 1.0}),
        "entropy": (entropy_loss(x, w, normalizer=norm), {}),
        "kl": (forward_kl(x, t, w, temperature=2.0, normalizer=norm), {"temperature": 2.0}),
        "reverse_kl": (reverse_kl(x, t, w, normalizer=norm), {}),
        "jsd": (generalized_jsd(x, t, w, beta=0.2, normalizer=norm), {"beta": 0.2}),
        "importance_sampling": (
            importance_sampling_loss(
                logp, inputs.old_logprobs, inputs.advantages, w, normalizer=norm
            ),
            {},
        ),
        "ppo": (
            ppo_clip_loss(logp, inputs.old_logprobs, inputs.advantages, w, normalizer=norm)[0],
            {},
        ),
        "ref_kl": (ref_kl_penalty(logp, inputs.ref_logprobs, w, normalizer=norm), {}),
    }
    for name, (expected, params) in cases.items():
        assert get_loss(name)(inputs, **params).item() == pytest.approx(expected.item()), name


def test_topk_teacher_dispatch(inputs):
    values, indices = inputs.teacher_logits.topk(4, dim=-1)
    topk_inputs = LossInputs(
        logits=inputs.logits,
        labels=inputs.labels,
        loss_weights=inputs.loss_weights,
        normalizer=None,  # this batch's own total weight, the functions' default
        teacher_topk_values=values,
        teacher_topk_indices=indices,
    )
    for name, kind in (("kl", "forward_kl"), ("reverse_kl", "reverse_kl"), ("jsd", "jsd")):
        expected = kd_loss_topk(inputs.logits, values, indices, inputs.loss_weights, kind=kind)
        assert get_loss(name)(topk_inputs).item() == pytest.approx(expected.item()), name


def test_missing_inputs_raise_clear_errors(inputs):
    bare = LossInputs(logits=inputs.logits, labels=inputs.labels, loss_weights=inputs.loss_weights)
    with pytest.raises(AutotrainError, match="teacher_logits"):
        get_loss("kl")(bare)
    with pytest.raises(AutotrainError, match="old_logprobs, advantages"):
        get_loss("ppo")(bare)
    with pytest.raises(AutotrainError, match="ref_logprobs"):
        get_loss("ref_kl")(bare)


def test_import_path_and_callable():
    assert get_loss("autotrain_pl.losses.cross_entropy.weighted_cross_entropy") is wce_by_module
    assert get_loss("autotrain_pl.losses.registry.ce") is get_loss("ce")
    assert get_loss(weighted_cross_entropy) is weighted_cross_entropy
    with pytest.raises(AutotrainError, match="cannot import module"):
        get_loss("no_such_package_xyz.loss")
    with pytest.raises(AutotrainError, match="has no attribute .does_not_exist"):
        get_loss("autotrain_pl.losses.cross_entropy.does_not_exist")


def test_unknown_and_pair_level_names():
    with pytest.raises(AutotrainError) as info:
        get_loss("klx")
    message = str(info.value)
    assert "'klx'" in message and "ce" in message and "jsd" in message and "\n" not in message
    with pytest.raises(AutotrainError, match="dpo_loss"):
        get_loss("dpo")
    with pytest.raises(AutotrainError, match="bradley_terry_loss"):
        get_loss("bradley_terry")


def test_register_custom_loss(inputs):
    @register_loss("double_ce", "ce2")
    def double_ce(loss_inputs: LossInputs, *, factor: float = 2.0) -> torch.Tensor:
        return factor * get_loss("ce")(loss_inputs)

    try:
        assert get_loss("ce2") is double_ce
        assert "double_ce" in available_losses()
        assert double_ce(inputs).item() == pytest.approx(2 * get_loss("ce")(inputs).item())
        with pytest.raises(AutotrainError, match="already registered"):
            register_loss("ce")(double_ce)
        with pytest.raises(AutotrainError, match="needs="):
            register_loss("bad_needs", needs=("teacher_logits",))
        with pytest.raises(AutotrainError, match="contain no dot"):
            register_loss("my.loss")
    finally:
        registry_module.LOSSES.unregister("double_ce")
        registry_module.LOSSES.unregister("ce2")
    assert "ce2" not in available_losses()


def test_needs_of_builtin_losses():
    needs = {name: registry_module.loss_needs(name) for name in available_losses()}
    for name in ("kl", "forward_kl", "reverse_kl", "jsd"):
        assert needs[name] == {"teacher"}, name
    assert needs["importance_sampling"] == {"advantages"}
    assert needs["ppo"] == {"old_logprobs", "advantages"}
    assert needs["ref_kl"] == {"reference"}
    for name in ("ce", "cross_entropy", "focal", "entropy"):
        assert needs[name] == frozenset(), name
    assert registry_module.loss_needs("autotrain_pl.losses.registry.jsd") == {"teacher"}
    assert registry_module.loss_needs(weighted_cross_entropy) == frozenset()


def test_default_normalizer_is_the_sum(inputs):
    """Objectives pass normalizer=1 and divide by the step's units; 1 is also the default."""
    x, y, w = inputs.logits, inputs.labels, inputs.loss_weights
    default = LossInputs(x, y, w, teacher_logits=inputs.teacher_logits)
    assert default.normalizer == 1.0
    for name in ("ce", "kl"):
        summed = get_loss(name)(default)
        explicit = get_loss(name)(LossInputs(x, y, w, 1.0, teacher_logits=inputs.teacher_logits))
        mean = get_loss(name)(LossInputs(x, y, w, None, teacher_logits=inputs.teacher_logits))
        assert summed.item() == explicit.item()
        assert summed.item() == pytest.approx(mean.item() * w.sum().item(), rel=1e-12)
    assert get_loss("ce")(default).item() == pytest.approx(
        weighted_cross_entropy(x, y, w, normalizer=1).item(), rel=1e-12
    )


def test_every_loss_handles_a_microbatch_without_trained_tokens(inputs):
    """A micro-batch may hold no trained position: the loss is 0 and still backpropagates."""
    logits = inputs.logits[:0].clone().requires_grad_(True)
    values, indices = inputs.teacher_logits[:0].topk(3, dim=-1)
    empty = {"labels": inputs.labels[:0], "loss_weights": inputs.loss_weights[:0], "normalizer": 4}
    for teacher in (
        {"teacher_logits": inputs.teacher_logits[:0]},
        {"teacher_topk_values": values, "teacher_topk_indices": indices},
    ):
        loss_inputs = LossInputs(
            logits,
            **empty,
            **teacher,
            old_logprobs=inputs.old_logprobs[:0],
            ref_logprobs=inputs.ref_logprobs[:0],
            advantages=inputs.advantages[:0],
        )
        for name in available_losses():
            loss = get_loss(name)(loss_inputs)
            assert loss.item() == 0.0, name
            loss.backward()
