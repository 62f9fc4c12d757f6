"""ChatML: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` (OpenAI, Qwen, many fine-tunes)."""

from __future__ import annotations

from collections.abc import Sequence

from autotrain_pl.rendering.base import MessageTokens, Renderer
from autotrain_pl.rendering.messages import Message
from autotrain_pl.rendering.registry import register_renderer

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@register_renderer("chatml")
class ChatMLRenderer(Renderer):
    name = "chatml"
    special_tokens = ("<|im_start|>", "<|im_end|>")

    def bos_tokens(self) -> list[int]:
        return []  # ChatML templates in the wild start directly with <|im_start|>.

    def _header(self, role: str) -> list[int]:
        return [self.token_id("<|im_start|>")] + self.encode(f"{role}\n")

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageTokens:
        message = messages[index]
        return MessageTokens(
            header=self._header(message.role),
            content=self.encode(message.content),
            footer=[self.token_id("<|im_end|>")] + self.encode("\n"),
        )

    def assistant_header(self, messages: Sequence[Message]) -> list[int]:
        return self._header("assistant")

    def stop_sequences(self) -> list[list[int]]:
        return [[self.token_id("<|im_end|>")]]

    def chat_template(self) -> str:
        return CHATML_TEMPLATE
