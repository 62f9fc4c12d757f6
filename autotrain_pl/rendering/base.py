"""The Renderer interface: messages in, token ids and per-token loss weights out.

A renderer writes each message as text, in the pieces that decide its loss weights:

- ``header``: role scaffolding before the content (e.g. ``<|im_start|>assistant\\n``); trained only
  under ``TrainOnWhat.ALL_TOKENS``;
- ``content``: the message text;
- ``footer``: what closes the turn (e.g. ``<|im_end|>\\n`` or EOS). A trained assistant turn always
  carries weight on its footer's end-of-turn token, so the model learns to stop;
- ``trailer``: untrained text after the footer (only templates with ``{% generation %}`` blocks
  write any).

Special tokens are written as their text (``<|im_start|>``, the tokenizer's ``eos_token``), so the
rendered conversation is character for character the text of the format's Jinja chat template
(``chat_template()``, which an export saves with its tokenizer).

Tokens are what serving produces. The text is tokenized as ``apply_chat_template`` tokenizes it:
all of it in one call, so each run of text between special tokens is split by the tokenizer exactly
as at serving time (a byte-level BPE merges ``" ASSISTANT"`` or ``"\\n\\n"`` across what were
separate pieces). Loss weights come from the exact character spans of the pieces through the
tokenizer's offset mapping; nothing is guessed. A token that straddles two pieces takes the larger
weight, so no trained character drops out of the loss.

The generation boundary. ``build_generation_prompt(messages)`` is the prompt text tokenized in one
call: token for token ``apply_chat_template(messages, add_generation_prompt=True)``. A supervised
example starts with exactly the generation prompt of its last assistant message. Its reply keeps
the tokens it has inside the whole conversation when the prompt's tokens are a prefix of those
(the usual case); where the tokenizer merges text across the boundary, the reply is tokenized on
its own after the prompt tokens, as a model generates it. Earlier turns keep the tokens that
serving gives a history.

A tokenizer without offsets (a Python "slow" tokenizer) tokenizes piece by piece instead, with the
same boundaries but not always the serving tokens; a warning says so once.

Tool use. Formats with ``supports_tools`` (``chatml``, ``llama3``, ``native``) take ``tools=`` (JSON
schemas or functions) and messages with ``tool_calls`` or the ``tool`` role, and write them as
their model family's template does; ``parse_response`` parses the calls back out of a reply
(``tools``). The other formats refuse them: no model was trained on a layout we would invent.
A tool-call turn is trained like any assistant turn; a tool result is not (see
``message_weight``).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import (
    KNOWN_ROLES,
    Message,
    MessageLike,
    TrainOnWhat,
    as_messages,
    has_tool_use,
)
from autotrain_pl.rendering.tools import ToolLike, as_tool_schemas


@dataclass
class MessageText:
    """The text pieces of one rendered message (see module docstring)."""

    header: str = ""
    content: str = ""
    footer: str = ""
    trailer: str = ""


@dataclass
class RenderedConversation:
    """What a format writes before any message (often BOS), then each message's pieces."""

    prelude: str
    messages: list[MessageText] = field(default_factory=list)


@dataclass
class SupervisedExample:
    input_ids: list[int]
    loss_weights: list[float]

    def __iter__(self):  # allows ``ids, weights = renderer.build_supervised_example(...)``
        return iter((self.input_ids, self.loss_weights))

    def __len__(self) -> int:
        return len(self.input_ids)


#: A stretch of rendered text and the loss weight of its tokens.
Span = tuple[str, float]


class Renderer(ABC):
    """Base class for chat formats. Subclasses implement ``render_message`` and the header."""

    #: Registry name, e.g. "chatml".
    name: str = ""
    #: Special tokens this format needs as single tokens; added to the tokenizer if missing.
    special_tokens: tuple[str, ...] = ()
    #: Roles the format can render; others raise a clear error.
    supported_roles: tuple[str, ...] = KNOWN_ROLES
    #: Whether the format has a convention for ``tools``, tool calls and tool results; formats
    #: without one refuse them rather than invent a layout no model was trained on.
    supports_tools: bool = False
    #: The ``eos_token`` that the family's official instruct models set on their tokenizers, so
    #: that serving stacks stop at the end of a turn (Qwen2.5-Instruct: ``<|im_end|>``; Llama 3.1
    #: Instruct: ``<|eot_id|>``). None keeps the tokenizer's own. An export applies it.
    instruct_eos_token: str | None = None

    def __init__(self, tokenizer, token_weights: Mapping[str, float] | None = None) -> None:
        self.tokenizer = tokenizer
        self.token_weights = dict(token_weights or {})
        self._checked_special_tokens = False
        self._warned_slow = False

    # -- hooks for subclasses -------------------------------------------------------------
    @abstractmethod
    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        """Render ``messages[index]`` in the context of the whole conversation."""

    @abstractmethod
    def assistant_header(self, messages: Sequence[Message]) -> str:
        """Text that opens an assistant turn after ``messages`` (the generation cue)."""

    @abstractmethod
    def stop_sequences(self) -> list[list[int]]:
        """Token-id sequences that end an assistant reply."""

    def prelude(self) -> str:
        """Text that starts every conversation; the tokenizer's BOS by default."""
        return self.tokenizer.bos_token or ""

    def render_conversation(
        self, messages: Sequence[Message], tools: list[dict] | None = None
    ) -> RenderedConversation:
        """The prelude and every message's pieces; override to render all messages at once.

        ``tools`` (JSON schemas) reach only formats with ``supports_tools``, which override this
        to write them where their template does.
        """
        pieces = [self.render_message(i, messages) for i in range(len(messages))]
        return RenderedConversation(self.prelude(), pieces)

    def render_prompt(self, messages: Sequence[Message], tools: list[dict] | None = None) -> str:
        """The generation prompt's text: the conversation, then the assistant header."""
        rendered = self._render_conversation(messages, tools)
        text = rendered.prelude + "".join(
            m.header + m.content + m.footer + m.trailer for m in rendered.messages
        )
        return text + self.assistant_header(messages)

    def message_from_reply(self, text: str) -> Message:
        """The assistant message a decoded reply stands for; formats with tool calls parse them."""
        return Message(role="assistant", content=text.strip())

    @classmethod
    def required_special_tokens(cls) -> tuple[str, ...]:
        """Tokens this format needs as single special tokens (see ``add_missing_special_tokens``)."""
        return tuple(cls.special_tokens)

    def chat_template(self) -> str:
        """A Jinja chat template that renders exactly this renderer's text.

        Saved with an exported model's tokenizer so ``apply_chat_template`` matches training.
        """
        raise AutotrainError(
            f"chat_format={self.name!r} ({type(self).__name__}) defines no Jinja chat template; "
            "implement chat_template() so an export can carry it"
        )

    # -- helpers ------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Tokenize plain text with no special tokens added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def token_id(self, token: str) -> int:
        """The id of a single special token; a clear error if the tokenizer lacks it."""
        if not has_single_token(self.tokenizer, token):
            raise AutotrainError(
                f"chat_format={self.name!r} needs the token {token!r}, which the tokenizer lacks; "
                "load the model through autotrain_pl.models so missing tokens are added"
            )
        return self.tokenizer.convert_tokens_to_ids(token)

    def eos_token(self) -> str:
        """The tokenizer's EOS as text, for formats whose turns end with it."""
        if self.tokenizer.eos_token is None:
            raise AutotrainError(
                f"chat_format={self.name!r} needs an EOS token, but the tokenizer has none; "
                "set tokenizer.eos_token"
            )
        return self.tokenizer.eos_token

    def eos_id(self) -> int:
        return self.token_id(self.eos_token())

    def check_roles(self, messages: Sequence[Message]) -> None:
        for i, message in enumerate(messages):
            if message.role not in self.supported_roles:
                allowed = ", ".join(self.supported_roles)
                raise AutotrainError(
                    f"message {i} has role {message.role!r}, which chat_format={self.name!r} "
                    f"cannot render; use one of: {allowed}"
                )

    def check_tools(self, messages: Sequence[Message], tools: list[dict] | None) -> None:
        """Refuse tools, tool calls and tool results in a format without a tool convention."""
        if self.supports_tools:
            return
        suggestion = "use chat_format='chatml', 'llama3' or 'native'"
        if tools is not None:
            raise AutotrainError(
                f"tools were given, but chat_format={self.name!r} has no convention for tools; "
                + suggestion
            )
        for i, message in enumerate(messages):
            if has_tool_use(message):
                what = "tool calls" if message.tool_calls else "role 'tool'"
                raise AutotrainError(
                    f"message {i} has {what}, but chat_format={self.name!r} has no convention "
                    f"for tool calls or tool results; {suggestion}"
                )

    def _prepare(
        self, messages: Sequence[MessageLike], tools: Sequence[ToolLike] | None = None
    ) -> tuple[list[Message], list[dict] | None]:
        """Accept dicts and tool functions; check the special tokens once, roles and tools always."""
        messages = as_messages(messages)
        schemas = as_tool_schemas(tools)
        if not self._checked_special_tokens:
            for token in self.required_special_tokens():
                self.token_id(token)
            self._checked_special_tokens = True
        self.check_tools(messages, schemas)
        self.check_roles(messages)
        return messages, schemas

    def _render_conversation(
        self, messages: Sequence[Message], tools: list[dict] | None
    ) -> RenderedConversation:
        # Renderers written before tools existed override render_conversation(messages) alone;
        # check_tools has refused tools for them.
        if tools is None:
            return self.render_conversation(messages)
        return self.render_conversation(messages, tools)

    # -- the contract -------------------------------------------------------------------
    def message_weight(self, index: int, messages: Sequence[Message], train_on: TrainOnWhat) -> float:
        """Loss weight of one message's content and footer.

        Order of precedence: the message's own ``weight``; then ``token_weights[role]``; then
        the ``train_on`` rule. Tool results are what the environment said, not what the model
        should learn to say: they carry weight only under ``ALL_TOKENS`` (or when asked for).
        """
        message = messages[index]
        if message.weight is not None:
            return float(message.weight)
        if train_on is TrainOnWhat.CUSTOMIZED:
            return 0.0
        if message.role in self.token_weights:
            return float(self.token_weights[message.role])
        if message.role == "tool":
            return 1.0 if train_on is TrainOnWhat.ALL_TOKENS else 0.0
        if train_on in (TrainOnWhat.ALL_MESSAGES, TrainOnWhat.ALL_TOKENS):
            return 1.0
        if message.role != "assistant":
            return 0.0
        if train_on is TrainOnWhat.ALL_ASSISTANT_MESSAGES:
            return 1.0
        assistants = [i for i, m in enumerate(messages) if m.role == "assistant"]
        last_assistant = assistants[-1] if assistants else -1
        return 1.0 if index == last_assistant else 0.0

    def build_supervised_example(
        self,
        messages: Sequence[MessageLike],
        train_on: TrainOnWhat | str = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
        tools: Sequence[ToolLike] | None = None,
    ) -> SupervisedExample:
        """Token ids and float loss weights of the same length for a whole conversation.

        ``tools`` (JSON schemas or functions) are written where the format's template puts them
        (formats with ``supports_tools`` only).
        """
        train_on = TrainOnWhat.parse(train_on)
        messages, tools = self._prepare(messages, tools)
        scaffold = 1.0 if train_on is TrainOnWhat.ALL_TOKENS else 0.0
        rendered = self._render_conversation(messages, tools)
        assistants = [i for i, m in enumerate(messages) if m.role == "assistant"]
        spans: list[Span] = [(rendered.prelude, scaffold)]
        reply_start = None
        for index, text in enumerate(rendered.messages):
            weight = self.message_weight(index, messages, train_on)
            spans.append((text.header, scaffold))
            if assistants and index == assistants[-1]:
                reply_start = len(spans)
            spans += [(text.content, weight), (text.footer, weight), (text.trailer, scaffold)]
        return self._tokenize(spans, reply_start)[0]

    def build_generation_prompt(
        self, messages: Sequence[MessageLike], tools: Sequence[ToolLike] | None = None
    ) -> list[int]:
        """Token ids that end exactly where the assistant's reply begins."""
        messages, tools = self._prepare(messages, tools)
        return self._tokenize(self._prompt_spans(messages, tools))[0].input_ids

    def render_completion(
        self,
        prompt: Sequence[MessageLike],
        completion: Sequence[MessageLike],
        weight: float = 1.0,
        tools: Sequence[ToolLike] | None = None,
    ) -> SupervisedExample:
        """Tokens of ``completion`` only, as they follow ``build_generation_prompt(prompt)``.

        Preference data renders the prompt once and each completion with this, so chosen and
        rejected never carry a second copy of the prompt. Assistant messages carry ``weight``.
        """
        prompt, completion = as_messages(prompt), as_messages(completion)
        full, tools = self._prepare([*prompt, *completion], tools)
        prompt_spans = self._prompt_spans(full[: len(prompt)], tools)
        rendered = self._render_conversation(full, tools)
        spans = list(prompt_spans)
        for index in range(len(prompt), len(full)):
            text = rendered.messages[index]
            message_weight = weight if full[index].role == "assistant" else 0.0
            if index > len(prompt):  # the first message's header ends the generation prompt
                spans.append((text.header, 0.0))
            spans += [(text.content, message_weight), (text.footer, message_weight),
                      (text.trailer, 0.0)]
        example, prompt_length = self._tokenize(spans, reply_start=len(prompt_spans))
        return SupervisedExample(
            example.input_ids[prompt_length:], example.loss_weights[prompt_length:]
        )

    def parse_response(self, token_ids: Sequence[int], strict: bool = False) -> Message:
        """Cut a sampled reply at its first stop sequence and decode it as an assistant message.

        Formats with tool calls parse them into ``tool_calls``; a call that cannot be parsed
        leaves the raw text as content and sets ``tool_call_error``. With ``strict=True`` that
        raises, and so does a reply that never reached a stop sequence (cut off by the length
        limit, so not a complete message).
        """
        token_ids = list(token_ids)
        end = _find_first_stop(token_ids, self.stop_sequences())
        if end is None and strict:
            raise AutotrainError(
                f"the model's reply has no stop sequence of chat_format={self.name!r} "
                "(cut off by max_new_tokens?); raise max_new_tokens or use strict=False"
            )
        body = token_ids if end is None else token_ids[:end]
        message = self.message_from_reply(self.tokenizer.decode(body, skip_special_tokens=False))
        if strict and message.tool_call_error:
            raise AutotrainError(
                f"the model's reply has a malformed tool call ({message.tool_call_error}); "
                "use strict=False to get the raw text"
            )
        return message

    def stop_token_ids(self) -> list[int]:
        """Single-token stop sequences, the form that ``model.generate(eos_token_id=...)`` takes."""
        return [seq[0] for seq in self.stop_sequences() if len(seq) == 1]

    # -- tokenization ---------------------------------------------------------------------
    def _prompt_spans(self, messages: Sequence[Message], tools: list[dict] | None) -> list[Span]:
        return [(self.render_prompt(messages, tools), 0.0)]

    def _tokenize(
        self, spans: Sequence[Span], reply_start: int | None = None
    ) -> tuple[SupervisedExample, int]:
        """Tokenize ``spans`` as serving does; returns the example and its prompt's length.

        The prompt is ``spans[:reply_start]``, kept token-exact (see module docstring).
        """
        whole = self._tokenize_spans(spans)
        if reply_start is None:
            return whole, 0
        prompt = self._tokenize_spans(spans[:reply_start])
        if whole.input_ids[: len(prompt)] == prompt.input_ids:
            return whole, len(prompt)
        reply = self._tokenize_spans(spans[reply_start:])
        merged = SupervisedExample(
            prompt.input_ids + reply.input_ids, prompt.loss_weights + reply.loss_weights
        )
        return merged, len(prompt)

    def _tokenize_spans(self, spans: Sequence[Span]) -> SupervisedExample:
        spans = [(text, weight) for text, weight in spans if text]
        if not getattr(self.tokenizer, "is_fast", False):
            return self._tokenize_piecewise(spans)
        text = "".join(t for t, _ in spans)
        if not text:
            return SupervisedExample([], [])
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return SupervisedExample(list(encoded["input_ids"]),
                                 _token_weights(spans, encoded["offset_mapping"]))

    def _tokenize_piecewise(self, spans: Sequence[Span]) -> SupervisedExample:
        if not self._warned_slow:
            self._warned_slow = True
            warnings.warn(
                f"chat_format={self.name!r}: the tokenizer gives no offsets (not a fast "
                "tokenizer), so messages are tokenized piece by piece; prompts may differ from "
                "apply_chat_template where text merges across pieces",
                stacklevel=3,
            )
        input_ids: list[int] = []
        loss_weights: list[float] = []
        for text, weight in spans:
            tokens = self.encode(text)
            input_ids += tokens
            loss_weights += [float(weight)] * len(tokens)
        return SupervisedExample(input_ids, loss_weights)


def _token_weights(spans: Sequence[Span], offsets: Sequence[tuple[int, int]]) -> list[float]:
    """Each token's loss weight: the largest weight of the spans its characters come from (a
    token that straddles a span boundary is trained if either side is). Vectorized: this runs
    once per token of every training row."""
    if not offsets:
        return []
    starts = np.cumsum([0] + [len(text) for text, _ in spans[:-1]])
    weights = np.asarray([weight for _, weight in spans], dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    first = np.maximum(np.searchsorted(starts, offsets[:, 0], side="right") - 1, 0)
    last = np.where(offsets[:, 1] > offsets[:, 0],
                    np.searchsorted(starts, offsets[:, 1], side="left") - 1, first)
    last = np.maximum(last, first)
    token_weights = weights[first]
    for index in np.nonzero(last > first)[0]:  # the few tokens that straddle spans
        token_weights[index] = weights[first[index] : last[index] + 1].max()
    return token_weights.tolist()


def has_single_token(tokenizer, token: str) -> bool:
    """True when ``token`` is in the vocabulary and its text encodes to exactly its own id."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (
        tokenizer.unk_token_id is not None and token_id == tokenizer.unk_token_id
    ):
        return False
    return list(tokenizer.encode(token, add_special_tokens=False)) == [token_id]


def _find_first_stop(token_ids: list[int], stops: list[list[int]]) -> int | None:
    for position in range(len(token_ids)):
        for stop in stops:
            if stop and token_ids[position : position + len(stop)] == stop:
                return position
    return None
