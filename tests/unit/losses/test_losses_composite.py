"""CompositeLoss: weighted sums, per-term metrics, validation, and construction from config."""

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import CompositeLoss, LossInputs, get_loss


@pytest.fixture
def inputs(gen, make_batch):
    logits, labels, weights = make_batch(gen)
    teacher = torch.randn(logits.shape, generator=gen, dtype=logits.dtype)
    return LossInputs(logits.requires_grad_(True), labels, weights, 5.0, teacher_logits=teacher)


def test_total_is_weighted_sum_and_terms_are_logged(inputs):
    composite = CompositeLoss(
        {"ce": 1.0, "kl": 0.1, "entropy": -0.01}, params={"kl": {"temperature": 2.0}}
    )
    total, metrics = composite(inputs)
    ce = get_loss("ce")(inputs)
    kl = get_loss("kl")(inputs, temperature=2.0)
    entropy = get_loss("entropy")(inputs)
    assert total.item() == pytest.approx((ce + 0.1 * kl - 0.01 * entropy).item(), rel=1e-12)
    assert set(metrics) == {"ce", "kl", "entropy"}
    assert metrics["kl"].item() == pytest.approx(kl.item())
    assert all(not value.requires_grad for value in metrics.values())
    (grad,) = torch.autograd.grad(total, inputs.logits)
    (expected,) = torch.autograd.grad(ce + 0.1 * kl - 0.01 * entropy, inputs.logits)
    assert torch.allclose(grad, expected)


def test_list_form_allows_one_loss_twice(inputs):
    composite = CompositeLoss(
        [
            {"name": "kl", "weight": 0.5, "params": {"temperature": 1.0}, "label": "kl_t1"},
            {"name": "kl", "weight": 0.5, "params": {"temperature": 4.0}, "label": "kl_t4"},
            {"name": "autotrain_pl.losses.registry.ce"},
        ]
    )
    total, metrics = composite(inputs)
    expected = 0.5 * get_loss("kl")(inputs) + 0.5 * get_loss("kl")(inputs, temperature=4.0)
    expected = expected + get_loss("ce")(inputs)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    assert set(metrics) == {"kl_t1", "kl_t4", "autotrain_pl.losses.registry.ce"}


def test_zero_weight_term_is_logged_without_gradient(inputs):
    total, metrics = CompositeLoss({"ce": 1.0, "entropy": 0.0})(inputs)
    assert total.item() == pytest.approx(get_loss("ce")(inputs).item())
    assert metrics["entropy"].item() == pytest.approx(get_loss("entropy")(inputs).item())


@pytest.mark.parametrize(
    ("terms", "params", "match"),
    [
        ({"ce": 1.0, "klx": 0.1}, None, "klx"),
        ({"ce": 1.0}, {"kl": {"temperature": 2.0}}, "not terms"),
        ({"kl": 1.0}, {"kl": {"temprature": 2.0}}, "temprature"),
        ({"ce": "high"}, None, "weight"),
        ({}, None, "empty"),
        ([{"weight": 1.0}], None, "'name'"),
        ([{"name": "ce", "wieght": 1.0}], None, "wieght"),
        ([{"name": "ce"}, {"name": "ce"}], None, "distinct 'label'"),
        ([{"name": "ce"}], {"ce": {}}, "dict form"),
    ],
)
def test_invalid_configs_fail_at_construction(terms, params, match):
    with pytest.raises(AutotrainError, match=match):
        CompositeLoss(terms, params)


def test_missing_teacher_fails_clearly_at_call_time(inputs):
    composite = CompositeLoss({"ce": 1.0, "jsd": 0.5})
    bare = LossInputs(inputs.logits, inputs.labels, inputs.loss_weights)
    with pytest.raises(AutotrainError, match="'jsd' needs LossInputs.teacher_logits"):
        composite(bare)


def test_constructible_with_jsonargparse():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--loss", type=CompositeLoss)
    config = parser.parse_object(
        {
            "loss": {
                "class_path": "autotrain_pl.losses.CompositeLoss",
                "init_args": {
                    "terms": {"ce": 1.0, "kl": 0.1},
                    "params": {"kl": {"temperature": 2.0}},
                },
            }
        }
    )
    composite = parser.instantiate_classes(config).loss
    assert isinstance(composite, CompositeLoss)
    assert [(t.label, t.weight, t.params) for t in composite.terms] == [
        ("ce", 1.0, {}),
        ("kl", 0.1, {"temperature": 2.0}),
    ]


def _user_loss(inputs: LossInputs) -> torch.Tensor:
    """A user's loss given by import path; it declares no needs."""
    return get_loss("ce")(inputs)


def test_needs_is_the_union_over_terms():
    assert CompositeLoss({"ce": 1.0, "entropy": -0.01}).needs == frozenset()
    assert CompositeLoss({"ce": 1.0, "kl": 0.1}).needs == {"teacher"}
    composite = CompositeLoss(
        [
            {"name": "ce"},
            {"name": "ppo", "weight": 1.0},
            {"name": "ref_kl", "weight": 0.04},
            {"name": "jsd", "weight": 0.5, "label": "jsd_half"},
        ]
    )
    assert composite.needs == {"teacher", "advantages", "old_logprobs", "reference"}
    assert isinstance(composite.needs, frozenset)


def test_terms_needing_lists_labels_in_term_order():
    composite = CompositeLoss(
        [
            {"name": "reverse_kl", "label": "rkl"},
            {"name": "ce"},
            {"name": "importance_sampling", "label": "is"},
            {"name": "kl", "weight": 0.1},
        ]
    )
    assert composite.terms_needing({"teacher"}) == ["rkl", "kl"]
    assert composite.terms_needing({"advantages", "reference"}) == ["is"]
    assert composite.terms_needing({"old_logprobs"}) == []  # importance_sampling: optional
    assert composite.terms_needing(set()) == []
    cannot_feed = {"teacher", "advantages", "old_logprobs", "reference"}
    assert CompositeLoss({"ce": 1.0, "focal": 0.5}).terms_needing(cannot_feed) == []
    with pytest.raises(ValueError, match="teacher_logits"):
        composite.terms_needing({"teacher_logits"})


def test_callables_and_user_import_paths_need_nothing():
    composite = CompositeLoss(
        [{"name": f"{__name__}._user_loss", "label": "user"}, {"name": "ce"}]
    )
    assert composite.needs == frozenset()
    assert composite.terms_needing({"teacher", "advantages"}) == []
    # an import path to a registered loss is that loss, with its needs
    assert CompositeLoss({"autotrain_pl.losses.registry.kl": 1.0}).needs == {"teacher"}
