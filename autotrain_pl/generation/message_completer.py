"""``MessageCompleter``: chat messages in, an assistant ``Message`` out.

The renderer builds the prompt token by token (no chat-template string round trip) and parses the
sampled tokens back, so the same format is used for training, sampling and evaluation.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation.sampling import SamplingConfig
from autotrain_pl.generation.token_completer import (
    DEFAULT_BATCH_SIZE,
    TokenCompleter,
    TokenCompletion,
)
from autotrain_pl.rendering.messages import Message, MessageLike, as_messages

MessagesLike = Sequence[MessageLike]


class MessageCompleter:
    """Samples assistant replies for conversations.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer.
        renderer: the chat format used to build prompts and parse replies.
        token_completer: reuse an existing ``TokenCompleter`` (its model/tokenizer win).
    """

    def __init__(self, model, tokenizer, renderer, *, token_completer: TokenCompleter | None = None):
        if renderer is None:
            raise AutotrainError("MessageCompleter needs a renderer; pass chat_format or a Renderer")
        self.renderer = renderer
        # Messages carry no logprobs, so the default completer skips computing them.
        self.token_completer = token_completer or TokenCompleter(
            model, tokenizer, renderer, return_logprobs=False
        )

    @property
    def tokenizer(self):
        return self.token_completer.tokenizer

    @property
    def model(self):
        return self.token_completer.model

    def build_prompt(self, messages: MessagesLike) -> list[int]:
        """Token ids of ``messages`` followed by the assistant header."""
        return self.renderer.build_generation_prompt(as_messages(messages))

    def __call__(
        self, messages: MessagesLike, sampling: SamplingConfig | None = None, strict: bool = False
    ) -> Message:
        """One reply to one conversation (use ``batch_complete`` for several samples)."""
        sampling = sampling or SamplingConfig()
        if sampling.num_return_sequences != 1:
            raise AutotrainError(
                f"sampling.num_return_sequences={sampling.num_return_sequences} returns several "
                "replies; call MessageCompleter.batch_complete([messages], sampling) instead"
            )
        completion = self.token_completer([self.build_prompt(messages)], sampling)[0]
        return self.to_message(completion, strict=strict)

    def batch_complete(
        self,
        conversations: Sequence[MessagesLike],
        sampling: SamplingConfig | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        strict: bool = False,
    ) -> list[Message]:
        """Replies to many conversations, batched; ``num_return_sequences`` per conversation."""
        completions = self.complete_tokens(conversations, sampling, batch_size)
        return [self.to_message(c, strict=strict) for c in completions]

    def complete_tokens(
        self,
        conversations: Sequence[MessagesLike],
        sampling: SamplingConfig | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> list[TokenCompletion]:
        """Like ``batch_complete`` but returns the raw ``TokenCompletion``s (tokens, stop reason)."""
        prompts = [self.build_prompt(messages) for messages in conversations]
        return self.token_completer.batch_complete(prompts, sampling, batch_size=batch_size)

    def stream_messages(
        self, messages: MessagesLike, sampling: SamplingConfig | None = None, strict: bool = False
    ) -> Generator[str, None, Message]:
        """Yield the reply as text chunks while it is generated; the generator returns the
        parsed ``Message`` (see ``TokenCompleter.stream_tokens``)."""
        chunks = self.token_completer.stream_tokens(self.build_prompt(messages), sampling)
        return self._stream_then_parse(chunks, strict)

    def to_message(self, completion: TokenCompletion, strict: bool = False) -> Message:
        """Parse a completion into an assistant message.

        With ``strict=True`` a reply that hit ``max_new_tokens`` before its end of turn, or that
        the renderer cannot parse, raises ``AutotrainError``. A user stop string ends the reply
        on purpose, so its (already cut) text is the content.
        """
        if completion.stop_reason == "length" and strict:
            raise AutotrainError(
                f"the reply was cut off after {completion.num_tokens} tokens, before the end of "
                "its turn; raise sampling.max_new_tokens or pass strict=False"
            )
        if completion.stop_reason == "stop":
            return Message(role="assistant", content=completion.text.strip())
        tokens = list(completion.tokens)
        if completion.stop_reason == "eos" and not self._ends_with_turn_end(tokens):
            # The model's EOS also ends a turn; show the parser the format's own end marker.
            end_of_turn = next((list(s) for s in self.renderer.stop_sequences() if s), [])
            tokens = tokens[:-1] + end_of_turn
        return self.renderer.parse_response(tokens, strict=strict)

    def _stream_then_parse(
        self, chunks: Generator[str, None, TokenCompletion], strict: bool
    ) -> Generator[str, None, Message]:
        completion = yield from chunks
        return self.to_message(completion, strict=strict)

    def _ends_with_turn_end(self, tokens: list[int]) -> bool:
        return any(s and tokens[-len(s):] == list(s) for s in self.renderer.stop_sequences())


def stream_messages(
    completer: MessageCompleter,
    messages: MessagesLike,
    sampling: SamplingConfig | None = None,
    strict: bool = False,
) -> Generator[str, None, Message]:
    """``completer.stream_messages(messages, sampling)``: yield text chunks, return the
    ``Message``."""
    return completer.stream_messages(messages, sampling, strict=strict)
