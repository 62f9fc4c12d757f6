"""Plain-text formats from the first instruction-tuned Llamas: ``alpaca`` and ``vicuna`` (v1.1).

- ``alpaca`` (Stanford Alpaca's prompt, extended to several turns)::

      <s>{system}\\n\\n### Instruction:\\n{user}\\n\\n### Response:\\n{assistant}</s>\\n\\n### Instruction:\\n...

  With no system message, Alpaca's preamble ("Below is an instruction that describes a task...")
  opens a conversation that starts with a user message. Every turn after the first is preceded by
  a blank line. A reply ends with EOS.
- ``vicuna`` (FastChat's ``vicuna_v1.1`` template, separator style ``ADD_COLON_TWO``)::

      <s>{system} USER: {user} ASSISTANT: {assistant}</s>USER: {user} ASSISTANT:

  With no system message, FastChat's default Vicuna system prompt is used. A system message is
  allowed only first. The generation prompt ends with ``ASSISTANT:``; the reply starts with a space.

Both formats mark roles with plain text, so they need no special tokens beyond BOS and EOS.
"""

from __future__ import annotations

from collections.abc import Sequence

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.base import MessageText, Renderer
from autotrain_pl.rendering.messages import Message
from autotrain_pl.rendering.registry import register_renderer

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

ALPACA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if not loop.first %}{{ '\\n\\n' }}{% endif %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}"
    "{% if loop.first %}{{ '" + ALPACA_PREAMBLE + "\\n\\n' }}{% endif %}"
    "{{ '### Instruction:\\n' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '### Response:\\n' + message['content'] + eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{% if messages %}{{ '\\n\\n' }}{% endif %}"
    "{{ '### Response:\\n' }}{% endif %}"
)

VICUNA_TEMPLATE = (
    "{{ bos_token }}{% if messages and messages[0]['role'] == 'system' %}"
    "{{ messages[0]['content'] + ' ' }}{% set loop_messages = messages[1:] %}"
    "{% else %}{{ '" + VICUNA_SYSTEM.replace("'", "\\'") + " ' }}"
    "{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if message['role'] == 'user' %}"
    "{{ 'USER: ' + message['content'] + ' ' }}{% elif message['role'] == 'assistant' %}"
    "{{ 'ASSISTANT: ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


@register_renderer("alpaca")
class AlpacaRenderer(Renderer):
    name = "alpaca"
    supported_roles = ("system", "user", "assistant")

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        sep = "\n\n" if index > 0 else ""
        if message.role == "system":
            return MessageText(header=sep, content=message.content)
        if message.role == "user":
            preamble = ALPACA_PREAMBLE + "\n\n" if index == 0 else ""
            return MessageText(header=sep + preamble + "### Instruction:\n", content=message.content)
        return MessageText(
            header=sep + "### Response:\n", content=message.content, footer=self.eos_token()
        )

    def assistant_header(self, messages: Sequence[Message]) -> str:
        return ("\n\n" if messages else "") + "### Response:\n"

    def stop_sequences(self) -> list[list[int]]:
        return [[self.eos_id()]]

    def chat_template(self) -> str:
        return ALPACA_TEMPLATE


@register_renderer("vicuna")
class VicunaRenderer(Renderer):
    name = "vicuna"
    supported_roles = ("system", "user", "assistant")

    def check_roles(self, messages: Sequence[Message]) -> None:
        super().check_roles(messages)
        for i, message in enumerate(messages):
            if message.role == "system" and i != 0:
                raise AutotrainError(
                    f"message {i} is a system message; chat_format='vicuna' allows a system "
                    "message only as the first message"
                )

    def _default_system(self, index: int, messages: Sequence[Message]) -> str:
        """FastChat's system prompt, when the conversation does not bring its own."""
        return VICUNA_SYSTEM + " " if index == 0 else ""

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        if message.role == "system":
            return MessageText(content=message.content, footer=" ")
        prefix = self._default_system(index, messages)
        if message.role == "user":
            return MessageText(header=prefix + "USER:", content=" " + message.content, footer=" ")
        return MessageText(
            header=prefix + "ASSISTANT:", content=" " + message.content, footer=self.eos_token()
        )

    def assistant_header(self, messages: Sequence[Message]) -> str:
        return self._default_system(len(messages), messages) + "ASSISTANT:"

    def stop_sequences(self) -> list[list[int]]:
        return [[self.eos_id()]]

    def chat_template(self) -> str:
        return VICUNA_TEMPLATE
