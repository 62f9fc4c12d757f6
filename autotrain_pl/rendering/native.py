"""``native``: the tokenizer's own chat template; ``auto``: native when there is one, else ChatML.

``native`` renders message by message, as text, and tokenizes like every other format (see
``base``), so its prompts are token for token ``apply_chat_template(..., add_generation_prompt=True)``:

1. Every prefix of the conversation is rendered with the template (text, as
   ``apply_chat_template(..., tokenize=False)``); a message's text is the difference between
   consecutive prefixes. What the template writes before any message (often BOS) is the prelude.
2. An assistant message's text must begin with the template's generation prompt (``messages[:k]``
   rendered with minus without ``add_generation_prompt=True``): that is its header, scaffolding.
   The rest is trained, end-of-turn token included. Where the template has ``{% generation %}``
   blocks, only the text inside them is trained; the text around them is scaffolding.
3. Another message's header is found by rendering it with a sentinel as content.

Tool use goes through as ``apply_chat_template`` takes it: ``tools=`` (schemas, or functions
converted the same way) and messages in the Hugging Face shape, ``tool_calls`` and ``tool``
messages included. A template whose text never mentions ``tools`` (or ``tool_calls``) would drop
them silently, so they are refused there. Two layouts of published templates are allowed although
they are not strictly message by message: consecutive tool results that share one turn (Qwen2.5,
Qwen3 close it after the last: the closing text goes with the last result), and a message that the
template renders only together with the next (Llama 3.1 with tools puts them into the first user
turn, so the system message alone does not render: its text goes with that user message).
Replies are parsed for ``<tool_call>`` blocks or a Llama 3.1 JSON call when the template writes
them.

Limits: a template must render a prefix the same way whatever follows it, and open an assistant
turn with its generation prompt; templates that rewrite history (moving the system prompt into the
last user turn, dropping earlier reasoning) raise an ``AutotrainError`` that points to the named
formats. A message whose header cannot be split off is trained as a whole (so, for trained roles,
its header is trained too). Stop sequences are the special token that follows an assistant reply
in the template (found with a probe conversation) and the tokenizer's EOS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.base import MessageText, RenderedConversation, Renderer
from autotrain_pl.rendering.chatml import ChatMLRenderer
from autotrain_pl.rendering.messages import Message
from autotrain_pl.rendering.registry import register_renderer
from autotrain_pl.rendering.tools import parse_hermes_reply, parse_llama3_reply

try:  # transformers >= 4.50: renders text and {% generation %} spans without tokenizing
    from transformers.utils.chat_template_utils import render_jinja_template
except ImportError:  # older transformers: apply_chat_template text only, no generation spans
    render_jinja_template = None

_GENERATION_RE = re.compile(r"\{%-?\s*generation\s*-?%\}")
_SENTINEL = "\u2063autotrain\u2063sentinel\u2063"


def tokenizer_chat_template(tokenizer) -> str | None:
    """The tokenizer's default chat template, or None."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):
        template = template.get("default")
    return template or None


@dataclass
class _Piece:
    text: str
    trained: bool  # False: scaffolding, trained only under TrainOnWhat.ALL_TOKENS


@register_renderer("native")
class NativeRenderer(Renderer):
    name = "native"
    supports_tools = True

    def __init__(self, tokenizer, token_weights: Mapping[str, float] | None = None) -> None:
        super().__init__(tokenizer, token_weights)
        template = tokenizer_chat_template(tokenizer)
        if template is None:
            raise AutotrainError(
                "chat_format='native' needs a tokenizer with a chat_template; "
                "use chat_format='auto' or a named format such as 'chatml'"
            )
        self._template = template
        self._has_generation = bool(_GENERATION_RE.search(template))
        self._stops: list[list[int]] | None = None

    def check_tools(self, messages: Sequence[Message], tools: list[dict] | None) -> None:
        if tools is not None and "tools" not in self._template:
            raise AutotrainError(
                "tools were given, but the tokenizer's chat template does not use them; use "
                "chat_format='chatml' or 'llama3', or a tokenizer whose template takes tools"
            )
        for i, message in enumerate(messages):
            if message.tool_calls and "tool_calls" not in self._template:
                raise AutotrainError(
                    f"message {i} has tool calls, but the tokenizer's chat template does not "
                    "write tool_calls; use chat_format='chatml' or 'llama3'"
                )

    # -- template rendering -----------------------------------------------------------------
    def _render(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool = False,
        track: bool = False,
        tools: list[dict] | None = None,
    ) -> tuple[str, list[tuple[int, int]]]:
        """Render with the template; ``track`` also returns ``{% generation %}`` char spans."""
        conversation = [_template_message(m) for m in messages]
        try:
            if render_jinja_template is not None:
                rendered, spans = render_jinja_template(
                    conversations=[conversation],
                    tools=tools,
                    chat_template=self._template,
                    return_assistant_tokens_mask=track and self._has_generation,
                    add_generation_prompt=add_generation_prompt,
                    **self.tokenizer.special_tokens_map,
                )
                return rendered[0], (spans[0] if spans else [])
            if not conversation:
                raise ValueError("empty conversation")
            text = self.tokenizer.apply_chat_template(
                conversation,
                tools=tools,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
            return text, []
        except Exception as err:  # jinja's raise_exception, undefined variables, ...
            raise AutotrainError(
                f"the tokenizer's chat template cannot render this conversation: {err}"
            ) from None

    def _text(
        self,
        messages: Sequence[Message],
        add_generation_prompt: bool = False,
        tools: list[dict] | None = None,
    ) -> str:
        return self._render(messages, add_generation_prompt, tools=tools)[0]

    def _not_prefix_stable(self, what: str) -> AutotrainError:
        return AutotrainError(
            f"chat_format='native': the tokenizer's chat template {what}, so it cannot be rendered "
            "message by message; use a named chat_format such as 'chatml' or 'llama3'"
        )

    # -- layout: each message as text pieces ----------------------------------------------------
    def _layout(
        self, messages: Sequence[Message], tools: list[dict] | None = None
    ) -> tuple[str, list[list[_Piece]]]:
        try:  # what the template writes before any message (often BOS)
            prelude = self._text([], tools=tools)
        except AutotrainError:
            prelude = ""
        texts = self._prefix_texts(messages, tools)
        if texts and texts[0] is not None and not texts[0].startswith(prelude):
            prelude = ""
        spans: list[tuple[int, int]] = []
        if self._has_generation and any(m.role == "assistant" for m in messages):
            full, spans = self._render(messages, track=True, tools=tools)
            if full != texts[-1]:
                spans = []
        pieces: list[list[_Piece]] = []
        previous = prelude
        for k, message in enumerate(messages):
            text = texts[k]
            if text is None:  # rendered only with the next message, whose text this goes with
                pieces.append([])
                continue
            if not text.startswith(previous):
                raise self._not_prefix_stable(
                    f"renders message {k - 1} differently once more follow"
                )
            new = text[len(previous) :]
            if message.role == "assistant":
                pieces.append(self._assistant_pieces(messages, k, previous, new, spans, tools))
            else:
                pieces.append(self._plain_pieces(messages, k, previous, new, tools))
            previous = text
        return prelude, pieces

    def _prefix_texts(
        self, messages: Sequence[Message], tools: list[dict] | None
    ) -> list[str | None]:
        """The text of each prefix ``messages[:k + 1]``, cut where message ``k``'s text ends.

        None for a prefix the template cannot render on its own (but can with what follows); an
        assistant message must render, or its trained text would go to the next message. A tool
        result followed by another loses the turn's closing text to the last of the run.
        """
        texts: list[str | None] = []
        for k in range(len(messages)):
            try:
                texts.append(self._text(messages[: k + 1], tools=tools))
            except AutotrainError:
                if k == len(messages) - 1 or messages[k].role == "assistant":
                    raise
                texts.append(None)
        for k in range(len(messages) - 1):
            text, following = texts[k], texts[k + 1]
            tool_run = messages[k].role == messages[k + 1].role == "tool"
            if tool_run and text is not None and following is not None:
                texts[k] = text[: _common_prefix_length(text, following)]
        return texts

    def _generation_header(
        self, messages: Sequence[Message], previous: str, tools: list[dict] | None = None
    ) -> str:
        try:
            prompt = self._text(messages, add_generation_prompt=True, tools=tools)
        except AutotrainError:
            if messages:
                raise
            return ""  # the template cannot render an empty conversation
        if not prompt.startswith(previous):
            raise self._not_prefix_stable(
                "changes earlier messages when it adds a generation prompt"
            )
        return prompt[len(previous) :]

    def _assistant_pieces(
        self,
        messages: Sequence[Message],
        k: int,
        previous: str,
        new: str,
        spans,
        tools: list[dict] | None,
    ) -> list[_Piece]:
        header = self._generation_header(messages[:k], previous, tools)
        if not new.startswith(header):
            raise self._not_prefix_stable(
                f"opens an assistant turn with {new[: len(header)]!r}, not with its generation "
                f"prompt {header!r}"
            )
        start, stop = len(previous) + len(header), len(previous) + len(new)
        inside = [(a, b) for a, b in spans if a < stop and b > start]
        if not inside:
            return [_Piece(header, False), _Piece(new[len(header) :], True)]
        a = max(min(a for a, _ in inside), start) - len(previous)
        b = min(max(b for _, b in inside), stop) - len(previous)
        return [
            _Piece(header, False),
            _Piece(new[len(header) : a], False),
            _Piece(new[a:b], True),
            _Piece(new[b:], False),
        ]

    def _plain_pieces(
        self,
        messages: Sequence[Message],
        k: int,
        previous: str,
        new: str,
        tools: list[dict] | None,
    ) -> list[_Piece]:
        whole = [_Piece(new, True)]
        probe = [*messages[:k], replace(messages[k], content=_SENTINEL, weight=None)]
        try:
            probe_text = self._text(probe, tools=tools)
        except AutotrainError:
            return whole
        if not probe_text.startswith(previous) or probe_text.count(_SENTINEL) != 1:
            return whole
        head, _, tail = probe_text[len(previous) :].partition(_SENTINEL)
        fits = new.startswith(head) and new.endswith(tail) and len(new) >= len(head) + len(tail)
        if not head or not fits:
            return whole
        return [_Piece(head, False), _Piece(new[len(head) :], True)]

    # -- the contract -------------------------------------------------------------------------
    def prelude(self) -> str:
        return self._layout([])[0]

    def render_conversation(
        self, messages: Sequence[Message], tools: list[dict] | None = None
    ) -> RenderedConversation:
        prelude, layout = self._layout(messages, tools)
        return RenderedConversation(prelude, [_as_message_text(pieces) for pieces in layout])

    def render_prompt(self, messages: Sequence[Message], tools: list[dict] | None = None) -> str:
        prelude, layout = self._layout(messages, tools)
        rendered = prelude + "".join(p.text for message in layout for p in message)
        return rendered + self._generation_header(messages, rendered, tools)

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        """Header: scaffolding before the trained text; content: the trained text; trailer:
        template text after a ``{% generation %}`` block (not trained)."""
        return self.render_conversation(messages[: index + 1]).messages[index]

    def assistant_header(self, messages: Sequence[Message]) -> str:
        prelude, layout = self._layout(messages)
        rendered = prelude + "".join(p.text for message in layout for p in message)
        return self._generation_header(messages, rendered)

    def stop_sequences(self) -> list[list[int]]:
        if self._stops is None:
            self._stops = self._find_stops()
        return self._stops

    def _find_stops(self) -> list[list[int]]:
        stops: list[list[int]] = []
        special = set(self.tokenizer.all_special_ids) | set(
            getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        )
        try:
            _, layout = self._layout([Message("user", "Hi"), Message("assistant", "Hello")])
            after = "".join(p.text for p in layout[-1]).partition("Hello")[2]
            tokens = self.encode(after)
            if tokens and tokens[0] in special:
                stops.append([tokens[0]])
        except AutotrainError:
            pass  # a template that needs more than this probe: EOS only
        eos = self.tokenizer.eos_token_id
        if eos is not None and [eos] not in stops:
            stops.append([eos])
        return stops

    def message_from_reply(self, text: str) -> Message:
        if "<tool_call>" in self._template:
            return parse_hermes_reply(text)
        if "ipython" in self._template and '"parameters"' in self._template:  # Llama 3.1/3.2
            return parse_llama3_reply(text)
        return super().message_from_reply(text)

    def chat_template(self) -> str:
        return self._template


def _template_message(message: Message) -> dict:
    """The message as a chat template sees it (the loss weight is ours, not the template's)."""
    data = message.to_dict()
    data.pop("weight", None)
    return data


def _common_prefix_length(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def _as_message_text(pieces: list[_Piece]) -> MessageText:
    """Untrained pieces before the trained one are the header; untrained ones after, the trailer."""
    trained = [i for i, piece in enumerate(pieces) if piece.trained]
    if not trained:
        return MessageText(header="".join(p.text for p in pieces))
    first, last = trained[0], trained[-1]
    return MessageText(
        header="".join(p.text for p in pieces[:first]),
        content="".join(p.text for p in pieces[first : last + 1]),
        trailer="".join(p.text for p in pieces[last + 1 :]),
    )


@register_renderer("auto")
class AutoRenderer(Renderer):
    """Not a format of its own: builds ``native`` if the tokenizer has a chat template, else
    ``chatml``. ``AutoRenderer(tokenizer)`` returns an instance of the chosen class."""

    name = "auto"

    @classmethod
    def resolve(cls, tokenizer) -> type[Renderer]:
        return NativeRenderer if tokenizer_chat_template(tokenizer) else ChatMLRenderer

    def __new__(cls, tokenizer, token_weights: Mapping[str, float] | None = None):
        return cls.resolve(tokenizer)(tokenizer, token_weights=token_weights)
