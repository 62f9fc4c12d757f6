"""The Renderer interface: messages in, token ids and per-token loss weights out.

A renderer builds every example message by message, as tokens, and concatenates. It never
tokenizes a whole rendered string and guesses where the boundaries were. Each message renders to
three token segments:

- ``header``: role scaffolding before the content (e.g. ``<|im_start|>assistant\\n``); trained only
  under ``TrainOnWhat.ALL_TOKENS``;
- ``content``: the message text;
- ``footer``: what closes the turn (e.g. ``<|im_end|>\\n`` or EOS). A trained assistant turn always
  carries weight on its footer's end-of-turn token, so the model learns to stop.

Because the generation prompt is the BOS, every earlier message, then the assistant header, a
supervised example always begins with exactly the generation prompt's tokens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import KNOWN_ROLES, Message, TrainOnWhat


@dataclass
class MessageTokens:
    """The three token segments of one rendered message (see module docstring)."""

    header: list[int] = field(default_factory=list)
    content: list[int] = field(default_factory=list)
    footer: list[int] = field(default_factory=list)


@dataclass
class SupervisedExample:
    input_ids: list[int]
    loss_weights: list[float]

    def __iter__(self):  # allows ``ids, weights = renderer.build_supervised_example(...)``
        return iter((self.input_ids, self.loss_weights))

    def __len__(self) -> int:
        return len(self.input_ids)


class Renderer(ABC):
    """Base class for chat formats. Subclasses implement ``render_message`` and the header."""

    #: Registry name, e.g. "chatml".
    name: str = ""
    #: Special tokens this format needs as single tokens; added to the tokenizer if missing.
    special_tokens: tuple[str, ...] = ()
    #: Roles the format can render; others raise a clear error.
    supported_roles: tuple[str, ...] = KNOWN_ROLES

    def __init__(self, tokenizer, token_weights: Mapping[str, float] | None = None) -> None:
        self.tokenizer = tokenizer
        self.token_weights = dict(token_weights or {})

    # -- hooks for subclasses -------------------------------------------------------------
    @abstractmethod
    def render_message(self, index: int, messages: Sequence[Message]) -> MessageTokens:
        """Render ``messages[index]`` in the context of the whole conversation."""

    @abstractmethod
    def assistant_header(self, messages: Sequence[Message]) -> list[int]:
        """Tokens that open an assistant turn after ``messages`` (the generation cue)."""

    @abstractmethod
    def stop_sequences(self) -> list[list[int]]:
        """Token-id sequences that end an assistant reply."""

    @classmethod
    def required_special_tokens(cls) -> tuple[str, ...]:
        """Tokens this format needs as single special tokens (see ``add_missing_special_tokens``)."""
        return tuple(cls.special_tokens)

    def chat_template(self) -> str:
        """A Jinja chat template that renders the same text as this renderer's tokens decode to.

        Saved with an exported model's tokenizer so ``apply_chat_template`` matches training.
        """
        raise AutotrainError(
            f"chat_format={self.name!r} ({type(self).__name__}) defines no Jinja chat template; "
            "implement chat_template() to export one"
        )

    def bos_tokens(self) -> list[int]:
        """Tokens that start every conversation."""
        bos = self.tokenizer.bos_token_id
        return [bos] if bos is not None else []

    # -- helpers ------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Tokenize plain text with no special tokens added."""
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def token_id(self, token: str) -> int:
        """The id of a single special token; a clear error if the tokenizer lacks it."""
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        unk_id = self.tokenizer.unk_token_id
        if token_id is None or (unk_id is not None and token_id == unk_id):
            raise AutotrainError(
                f"chat_format={self.name!r} needs the token {token!r}, which the tokenizer lacks; "
                "load the model through autotrain_pl.models so missing tokens are added"
            )
        return token_id

    def eos_id(self) -> int:
        if self.tokenizer.eos_token_id is None:
            raise AutotrainError(
                f"chat_format={self.name!r} needs an EOS token, but the tokenizer has none; "
                "set tokenizer.eos_token"
            )
        return self.tokenizer.eos_token_id

    def check_roles(self, messages: Sequence[Message]) -> None:
        for i, message in enumerate(messages):
            if message.role not in self.supported_roles:
                allowed = ", ".join(self.supported_roles)
                raise AutotrainError(
                    f"message {i} has role {message.role!r}, which chat_format={self.name!r} "
                    f"cannot render; use one of: {allowed}"
                )

    # -- the contract -------------------------------------------------------------------
    def message_weight(self, index: int, messages: Sequence[Message], train_on: TrainOnWhat) -> float:
        """Loss weight of one message's content and footer.

        Order of precedence: the message's own ``weight``; then ``token_weights[role]``; then
        the ``train_on`` rule.
        """
        message = messages[index]
        if message.weight is not None:
            return float(message.weight)
        if train_on is TrainOnWhat.CUSTOMIZED:
            return 0.0
        if message.role in self.token_weights:
            return float(self.token_weights[message.role])
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
        messages: Sequence[Message],
        train_on: TrainOnWhat | str = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
    ) -> SupervisedExample:
        """Token ids and float loss weights of the same length for a whole conversation."""
        train_on = TrainOnWhat.parse(train_on)
        self.check_roles(messages)
        scaffold_weight = 1.0 if train_on is TrainOnWhat.ALL_TOKENS else 0.0
        input_ids = self.bos_tokens()
        loss_weights = [scaffold_weight] * len(input_ids)
        for index in range(len(messages)):
            tokens = self.render_message(index, messages)
            weight = self.message_weight(index, messages, train_on)
            input_ids += tokens.header + tokens.content + tokens.footer
            loss_weights += [scaffold_weight] * len(tokens.header)
            loss_weights += [weight] * (len(tokens.content) + len(tokens.footer))
        return SupervisedExample(input_ids, loss_weights)

    def build_generation_prompt(self, messages: Sequence[Message]) -> list[int]:
        """Token ids that end exactly where the assistant's reply begins."""
        self.check_roles(messages)
        input_ids = self.bos_tokens()
        for index in range(len(messages)):
            tokens = self.render_message(index, messages)
            input_ids += tokens.header + tokens.content + tokens.footer
        return input_ids + self.assistant_header(messages)

    def render_completion(
        self, prompt: Sequence[Message], completion: Sequence[Message], weight: float = 1.0
    ) -> SupervisedExample:
        """Tokens of ``completion`` only, as they follow ``build_generation_prompt(prompt)``.

        Preference data renders the prompt once and each completion with this, so chosen and
        rejected never carry a second copy of the prompt.
        """
        full = [*prompt, *completion]
        self.check_roles(full)
        input_ids: list[int] = []
        loss_weights: list[float] = []
        for index in range(len(prompt), len(full)):
            tokens = self.render_message(index, full)
            header = tokens.header if index > len(prompt) else []
            message_weight = weight if full[index].role == "assistant" else 0.0
            input_ids += header + tokens.content + tokens.footer
            loss_weights += [0.0] * len(header)
            loss_weights += [message_weight] * (len(tokens.content) + len(tokens.footer))
        return SupervisedExample(input_ids, loss_weights)

    def parse_response(self, token_ids: Sequence[int], strict: bool = False) -> Message:
        """Cut a sampled reply at its first stop sequence and decode it as an assistant message.

        With ``strict=True`` a reply that never reached a stop sequence raises, since it was cut
        off by the length limit and is not a complete message.
        """
        token_ids = list(token_ids)
        end = _find_first_stop(token_ids, self.stop_sequences())
        if end is None and strict:
            raise AutotrainError(
                f"the model's reply has no stop sequence of chat_format={self.name!r} "
                "(cut off by max_new_tokens?); raise max_new_tokens or use strict=False"
            )
        body = token_ids if end is None else token_ids[:end]
        text = self.tokenizer.decode(body, skip_special_tokens=False)
        return Message(role="assistant", content=text.strip())

    def stop_token_ids(self) -> list[int]:
        """Single-token stop sequences, the form that ``model.generate(eos_token_id=...)`` takes."""
        return [seq[0] for seq in self.stop_sequences() if len(seq) == 1]


def _find_first_stop(token_ids: list[int], stops: list[list[int]]) -> int | None:
    for position in range(len(token_ids)):
        for stop in stops:
            if stop and token_ids[position : position + len(stop)] == stop:
                return position
    return None
