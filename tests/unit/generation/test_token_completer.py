import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig, TokenCompleter

GREEDY = SamplingConfig(max_new_tokens=8, temperature=0)


def encode(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


@pytest.fixture
def completer(model, tokenizer, renderer):
    return TokenCompleter(model, tokenizer, renderer, return_processed_logprobs=True)


def test_greedy_matches_model_generate(model, tokenizer, completer):
    prompt = encode(tokenizer, "The cat sat on the")
    [completion] = completer(prompt, GREEDY)
    with torch.no_grad():
        reference = model.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False,
                                   eos_token_id=list(completer.stop_conditions(GREEDY)
                                                     .single_token_ids()),
                                   pad_token_id=tokenizer.pad_token_id)
    assert completion.tokens == reference[0, len(prompt):].tolist()
    assert completion.stop_reason == "length" and len(completion.tokens) == 8
    assert completion.text == tokenizer.decode(completion.tokens)


def test_seeded_sampling_is_reproducible_and_leaves_global_rng_alone(tokenizer, completer):
    prompt = encode(tokenizer, "Once upon a time")
    sampling = SamplingConfig(max_new_tokens=6, temperature=1.0, seed=123)
    torch.manual_seed(0)
    first = completer(prompt, sampling)[0].tokens
    after_first = torch.rand(1)
    torch.manual_seed(0)
    second = completer(prompt, sampling)[0].tokens
    assert first == second
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after_first)  # the call did not advance the global RNG
    other = completer(prompt, SamplingConfig(max_new_tokens=6, seed=124))[0].tokens
    assert other != first


def test_raw_logprobs_equal_teacher_forced_forward(model, tokenizer, completer, teacher_forced):
    prompt = encode(tokenizer, "Logprobs must match")
    sampling = SamplingConfig(max_new_tokens=10, temperature=0.7, top_k=50, seed=7,
                              num_return_sequences=2)
    completions = completer(prompt, sampling)
    assert len(completions) == 2
    for completion in completions:
        expected = teacher_forced(model, prompt, completion.tokens)
        assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=1e-4)
        # processed logprobs: after temperature (and top-k, which keeps every sampled token)
        scaled = teacher_forced(model, prompt, completion.tokens, temperature=0.7)
        assert not torch.allclose(torch.tensor(completion.processed_logprobs), expected, atol=1e-2)
        assert all(p >= s - 1e-4 for p, s in zip(completion.processed_logprobs, scaled.tolist(),
                                                  strict=True))


def test_samples_of_left_padded_prompts_share_one_prompt_encoding(model, tokenizer, completer,
                                                                  teacher_forced):
    """G samples per prompt fill the prompt's KV cache once and repeat it: each copy must be what
    the prompt alone gives (top-k 1: its greedy tokens), with exact raw logprobs."""
    prompts = [encode(tokenizer, text) for text in ("Hi", "A much longer prompt than the first",
                                                     "Medium sized prompt")]
    copies = completer(prompts, SamplingConfig(max_new_tokens=6, temperature=1.0, top_k=1,
                                               num_return_sequences=3))
    for index, prompt in enumerate(prompts):
        [alone] = completer(prompt, SamplingConfig(max_new_tokens=6, temperature=0))
        for completion in copies[3 * index:3 * index + 3]:
            assert completion.tokens == alone.tokens
            expected = teacher_forced(model, prompt, completion.tokens)
            assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=1e-4)


def test_beam_search_logprobs_are_teacher_forced(model, tokenizer, completer, teacher_forced):
    prompt = encode(tokenizer, "Beams")
    completions = completer(prompt, SamplingConfig(max_new_tokens=5, num_beams=3,
                                                   num_return_sequences=2))
    assert len(completions) == 2
    for completion in completions:
        expected = teacher_forced(model, prompt, completion.tokens)
        assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=1e-4)


def test_stop_reason_eos(tokenizer, completer, force_tokens, teacher_forced, model):
    prompt = encode(tokenizer, "Say hi")
    hi = encode(tokenizer, "Hi there")
    with force_tokens(hi + [tokenizer.eos_token_id]):
        [completion] = completer(prompt, GREEDY)
    assert completion.stop_reason == "eos"
    assert completion.tokens == hi + [tokenizer.eos_token_id]
    assert completion.text == "Hi there"
    assert len(completion.logprobs) == len(completion.tokens)


def test_stop_string_spanning_tokens(tokenizer, completer, force_tokens):
    sampling = SamplingConfig(max_new_tokens=30, temperature=0, stop=["45"])
    with force_tokens(encode(tokenizer, "0123456789")):
        [completion] = completer(encode(tokenizer, "go"), sampling)
    assert completion.stop_reason == "stop" and completion.text == "0123"
    assert completion.tokens == encode(tokenizer, "012345")
    assert max(completion.logprobs) <= 0 and min(completion.logprobs) > -1e-3  # forced tokens


def test_end_of_turn_token_is_eos_too(tokenizer, renderer, completer, force_tokens):
    [im_end] = renderer.stop_token_ids()
    with force_tokens(encode(tokenizer, "ok") + [im_end]):
        [completion] = completer(encode(tokenizer, "x"), GREEDY)
    assert completion.stop_reason == "eos" and completion.tokens[-1] == im_end
    assert completion.text == "ok"


def test_stop_reason_length(tokenizer, completer, force_tokens):
    with force_tokens(encode(tokenizer, "0123456789")):
        [completion] = completer(encode(tokenizer, "count"), SamplingConfig(max_new_tokens=5,
                                                                            temperature=0))
    assert completion.stop_reason == "length" and completion.text == "01234"


def test_stop_string_is_cut_exactly_once(tokenizer, completer, force_tokens):
    # Generates "12\n\n34\n\n56...": the stop "\n\n" recurs later and must be cut once.
    script = encode(tokenizer, "12\n\n34\n\n56")
    sampling = SamplingConfig(max_new_tokens=20, temperature=0, stop=["\n\n"])
    with force_tokens(script):
        [completion] = completer(encode(tokenizer, "go"), sampling)
    assert completion.stop_reason == "stop"
    assert completion.text == "12"
    assert completion.tokens == encode(tokenizer, "12\n\n")  # ends with the completing token
    assert len(completion.logprobs) == len(completion.tokens)


def test_stop_string_inside_a_token_and_a_stop_equal_to_text_tail(tokenizer, completer,
                                                                  force_tokens):
    script = encode(tokenizer, "ab hello world")  # ' he' is one token; stop "el" ends inside 'l'
    sampling = SamplingConfig(max_new_tokens=20, temperature=0, stop=["ell"])
    with force_tokens(script):
        [completion] = completer(encode(tokenizer, "go"), sampling)
    assert completion.stop_reason == "stop" and completion.text == "ab h"
    assert tokenizer.decode(completion.tokens).startswith("ab hell")


def test_stop_strings_do_not_match_across_the_prompt(tokenizer, completer, force_tokens):
    prompt = encode(tokenizer, "count 4")
    sampling = SamplingConfig(max_new_tokens=4, temperature=0, stop=["45"])
    with force_tokens(encode(tokenizer, "5678")):
        [completion] = completer(prompt, sampling)
    assert completion.stop_reason == "length" and completion.text == "5678"


def test_stop_token_ids_single_and_sequence(tokenizer, completer, force_tokens):
    digits = encode(tokenizer, "0123456789")
    with force_tokens(digits):
        [single] = completer(encode(tokenizer, "a"), SamplingConfig(
            max_new_tokens=20, temperature=0, stop=[digits[3]]))
    with force_tokens(digits):
        [pair] = completer(encode(tokenizer, "a"), SamplingConfig(
            max_new_tokens=20, temperature=0, stop=[[digits[4], digits[5]]]))
    assert single.stop_reason == "stop" and single.text == "012" and single.tokens == digits[:4]
    assert pair.stop_reason == "stop" and pair.text == "0123" and pair.tokens == digits[:6]


def test_batch_complete_equals_one_by_one_with_left_padding(tokenizer, completer):
    texts = ["Hi", "The quick brown fox jumps over", "12+34=", "A much longer prompt with many "
             "more tokens than the others so padding matters", "x"]
    prompts = [encode(tokenizer, t) for t in texts]
    batched = completer.batch_complete(prompts, GREEDY, batch_size=3)
    assert len(batched) == len(prompts)
    for prompt, together in zip(prompts, batched, strict=True):
        [alone] = completer(prompt, GREEDY)
        assert together.tokens == alone.tokens
        assert torch.allclose(torch.tensor(together.logprobs), torch.tensor(alone.logprobs),
                              atol=1e-4)


def test_many_prompts_with_several_samples_are_prompt_major(tokenizer, completer, force_tokens):
    prompts = [encode(tokenizer, "a"), encode(tokenizer, "bb cc")]
    results = completer(prompts, SamplingConfig(max_new_tokens=3, num_return_sequences=3,
                                                seed=0))
    assert len(results) == 6


def test_bad_prompts_raise_clear_errors(completer):
    with pytest.raises(AutotrainError, match="prompt 1 has no tokens"):
        completer.batch_complete([[1, 2], []], GREEDY)
    with pytest.raises(AutotrainError, match="string"):
        completer.batch_complete(["hello"], GREEDY)
