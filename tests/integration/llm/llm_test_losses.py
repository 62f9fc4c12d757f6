"""A user loss for ``--forward-backward-custom-fn``, imported by path (never eval)."""

from autotrain_pl.losses import LossInputs, weighted_cross_entropy


def half_cross_entropy(inputs: LossInputs):
    """Half the weighted cross-entropy sum: a loss in our ``(inputs) -> Tensor`` shape."""
    return 0.5 * weighted_cross_entropy(inputs.logits, inputs.labels, inputs.loss_weights,
                                        normalizer=inputs.normalizer)
