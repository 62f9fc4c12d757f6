"""Reference computations the benchmark tests compare against, written out independently."""

import torch


def teacher_forced_loglikelihood(model, context_ids: list[int], continuation_ids: list[int]
                                 ) -> float:
    """Reference: one forward over context + continuation, summed target log-probs."""
    ids = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0].double().log_softmax(-1)
    start = len(context_ids)
    return sum(float(logprobs[start + j - 1, token]) for j, token in enumerate(continuation_ids))


def harness_split(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness ``_encode_pair``, written out independently for the tests."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    whole = tokenizer.encode(context + continuation, add_special_tokens=False)
    context_ids = tokenizer.encode(context, add_special_tokens=False)
    return context_ids, whole[len(context_ids):]
