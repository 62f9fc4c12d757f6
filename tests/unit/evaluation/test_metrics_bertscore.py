"""BERTScore with a tiny BERT built on the fly (no hub), and its offline error path."""

import huggingface_hub.constants
import pytest
import torch
from pytest import approx
from torchmetrics.functional.text.bert import bert_score
from transformers import BertModel, BertTokenizerFast

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics import get_metric


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _by_hand(tokenizer, model, prediction: str, reference: str) -> tuple[float, float, float]:
    """Greedy cosine matching of last-layer token embeddings, [CLS]/[SEP] excluded, no idf."""

    def embed(text: str) -> torch.Tensor:
        encoded = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**encoded).last_hidden_state[0, 1:-1]
        return hidden / hidden.norm(dim=-1, keepdim=True)

    cosine = embed(prediction) @ embed(reference).T
    precision = cosine.max(dim=1).values.mean().item()
    recall = cosine.max(dim=0).values.mean().item()
    return precision, recall, 2 * precision * recall / (precision + recall)


PREDICTIONS = ["the cat sat on the mat", "hello there", "a quick brown fox jumps over the lazy dog"]
REFERENCES = ["the cat sat on a mat", "hello there general kenobi", "dog"]


def test_identical_beats_unrelated(tiny_bert_dir):
    same = get_metric("bertscore", model_name_or_path=tiny_bert_dir)
    same.update(["the cat sat on the mat"], ["the cat sat on the mat"])
    other = get_metric("bertscore", model_name_or_path=tiny_bert_dir)
    other.update(["the cat sat on the mat"], ["stock market fell sharply today"])
    assert same.compute()["bertscore_f1"] == approx(1.0, abs=1e-5)
    assert same.compute()["bertscore_f1"] > other.compute()["bertscore_f1"]


def test_matches_hand_computation_and_torchmetrics_per_pair(tiny_bert_dir):
    metric = get_metric("bertscore", model_name_or_path=tiny_bert_dir, batch_size=2)
    metric.update(PREDICTIONS[:2], REFERENCES[:2])
    metric.update(PREDICTIONS[2:], REFERENCES[2:])
    result = metric.compute()

    tokenizer = BertTokenizerFast.from_pretrained(tiny_bert_dir)
    model = BertModel.from_pretrained(tiny_bert_dir).eval()
    pairs = list(zip(PREDICTIONS, REFERENCES, strict=True))
    hand = [_by_hand(tokenizer, model, p, r) for p, r in pairs]
    for index, key in enumerate(("precision", "recall", "f1")):
        expected = sum(scores[index] for scores in hand) / len(hand)
        assert result[f"bertscore_{key}"] == approx(expected, abs=1e-5)

    # torchmetrics' functional bert_score, one pair per call (its batched path misaligns pairs
    # of different lengths, Lightning-AI/torchmetrics#2728, which is why we do not use it).
    def tokenize(texts, max_length=64, **_):
        return tokenizer(
            texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
        )

    upstream = [
        bert_score([p], [r], model=model, user_tokenizer=tokenize, max_length=64) for p, r in pairs
    ]
    expected_f1 = sum(float(scores["f1"]) for scores in upstream) / len(upstream)
    assert result["bertscore_f1"] == approx(expected_f1, abs=1e-5)


def test_several_references_take_the_best(tiny_bert_dir):
    multi = get_metric("bertscore", model_name_or_path=tiny_bert_dir)
    multi.update(["hello there", "the cat sat"], [["dog", "hello there"], ["the cat sat", "park"]])
    assert multi.compute()["bertscore_f1"] == approx(1.0, abs=1e-5)


def test_missing_model_raises_instead_of_scoring_zero(tmp_path):
    with pytest.raises(AutotrainError, match="local model dir"):
        get_metric("bertscore", model_name_or_path="autotrain-pl-tests/no-such-model")
    with pytest.raises(AutotrainError, match="model_name_or_path"):
        get_metric("bertscore", model_name_or_path=str(tmp_path / "missing"))


def test_missing_model_hint_names_what_the_caller_can_type(tmp_path):
    import json
    import shlex

    from autotrain_pl.data.validation import spell_options

    missing = str(tmp_path / "missing")
    with pytest.raises(AutotrainError) as python_error:
        get_metric("bertscore", model_name_or_path=missing)
    assert "get_metric('bertscore', model_name_or_path=" in str(python_error.value)
    assert "metric_kwargs=" in str(python_error.value)
    with spell_options({"metric_kwargs": "--metric_kwargs"}), pytest.raises(AutotrainError) as cli:
        get_metric("bertscore", model_name_or_path=missing)
    message = str(cli.value)
    assert "get_metric" not in message and "\n" not in message
    typed = message.split("set ", 1)[1]
    flag, value = shlex.split(typed)[0].split("=", 1)
    assert flag == "--metric_kwargs"
    assert list(json.loads(value)) == ["bertscore"]  # a value `aitrain eval` accepts
