"""A rollout engine that replies from a script, for episodes whose turns a test decides."""

import pytest

from autotrain_pl.generation.token_completer import TokenCompletion


class ScriptedEngine:
    """Samples the given reply texts in turn, each ended by the chat format's stop sequence."""

    def __init__(self, tokenizer, renderer, replies):
        self.tokenizer, self.renderer = tokenizer, renderer
        self.replies = iter(replies)

    def sample(self, prompts, sampling):
        out = []
        for _ in range(len(prompts) * sampling.num_return_sequences):
            text = next(self.replies)
            tokens = self.tokenizer.encode(text, add_special_tokens=False) + \
                self.renderer.stop_sequences()[0]
            out.append(TokenCompletion(tokens=tokens, logprobs=[-0.5] * len(tokens),
                                       stop_reason="eos", text=text))
        return out


@pytest.fixture
def scripted_engine():
    return ScriptedEngine
