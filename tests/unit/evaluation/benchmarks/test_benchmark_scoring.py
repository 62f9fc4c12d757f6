"""Per-choice log-likelihoods equal a direct teacher-forced forward, for every scoring method."""

import pytest
from benchmark_helpers import harness_split, teacher_forced_loglikelihood

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.benchmarks import (
    SCORING_METHODS,
    EncodedQuestion,
    LoglikelihoodScorer,
    encode_pair,
    encode_question,
)

QUESTIONS = [
    ("Question: Which gas do plants take in?\nAnswer:", [" carbon dioxide", " oxygen", " helium"]),
    ("The following are multiple choice questions.\n\nWhat is 2+2?\nA. 3\nB. 4\nAnswer:",
     [" A", " B"]),
    ("A man is sitting on a roof. He", [" is using wrap to wrap a pair of skis.",
                                        " starts pulling up roofing on a roof.", " x", " waves."]),
    ("Short", [" one", " two words here", " 3"]),
]


def test_encode_pair_moves_trailing_space_and_splits_the_joint_encoding(tiny):
    _, tokenizer = tiny
    context, continuation = "Question: What is 2+2?\nAnswer: ", "four"
    ids, cont = encode_pair(tokenizer, context, continuation)
    assert (ids, cont) == harness_split(tokenizer, context, continuation)
    assert ids == tokenizer.encode("Question: What is 2+2?\nAnswer:", add_special_tokens=False)
    assert tokenizer.decode(cont) == " four"
    with_bos, _ = encode_pair(tokenizer, context, continuation, add_bos_token=True)
    assert with_bos == [tokenizer.bos_token_id, *ids]


def test_empty_context_is_predicted_from_a_prefix_token(tiny):
    _, tokenizer = tiny
    ids, cont = encode_pair(tokenizer, "", "hello")
    assert ids == [tokenizer.bos_token_id]
    assert cont == tokenizer.encode("hello", add_special_tokens=False)


@pytest.mark.parametrize("method", SCORING_METHODS)
@pytest.mark.parametrize("batch_size", [1, 3])
def test_every_method_equals_teacher_forcing(tiny, method, batch_size):
    model, tokenizer = tiny
    encoded = [encode_question(tokenizer, ctx, conts) for ctx, conts in QUESTIONS]
    scores = LoglikelihoodScorer(model, batch_size=batch_size, method=method).score(encoded)
    for (context, continuations), got in zip(QUESTIONS, scores, strict=True):
        expected = [teacher_forced_loglikelihood(model, *harness_split(tokenizer, context, c))
                    for c in continuations]
        assert got == pytest.approx(expected, abs=1e-4)


def test_long_contexts_are_cut_on_the_left(tiny):
    model, tokenizer = tiny
    context = " ".join(f"word{i}" for i in range(60))
    question = encode_question(tokenizer, context, [" end", " finish now"])
    longest = max(len(c) for c in question.continuation_ids)
    scorer = LoglikelihoodScorer(model, max_length=20)
    got = scorer.score([question])[0]
    kept = question.context_ids[-(21 - longest):]
    expected = [teacher_forced_loglikelihood(model, kept, c) for c in question.continuation_ids]
    assert got == pytest.approx(expected, abs=1e-4)


def test_bad_arguments_are_user_errors(tiny):
    model, _ = tiny
    with pytest.raises(AutotrainError, match="scoring method"):
        LoglikelihoodScorer(model, method="fast")
    with pytest.raises(AutotrainError, match="does not fit"):
        LoglikelihoodScorer(model, max_length=2).score([EncodedQuestion([1, 2], [[5, 6, 7, 8]])])


def test_models_without_a_plain_head_use_their_own_logits(tiny, monkeypatch):
    model, tokenizer = tiny
    encoded = [encode_question(tokenizer, ctx, conts) for ctx, conts in QUESTIONS]
    plain = LoglikelihoodScorer(model, batch_size=2).score(encoded)
    # What scaled or softcapped heads (Cohere, Gemma 2) get: the model's own logits. A scale of
    # 1 marks the head as not plain while Llama's own forward gives the same logits.
    monkeypatch.setattr(model.config, "logit_scale", 1.0, raising=False)
    for method in ("shared_context", "batched"):
        scorer = LoglikelihoodScorer(model, batch_size=2, method=method)
        assert scorer.decoder is None
        assert scorer.score(encoded) == [pytest.approx(row, abs=1e-4) for row in plain]
