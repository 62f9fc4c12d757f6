"""ChatML: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` (OpenAI, Qwen, many fine-tunes)."""

from __future__ import annotations

from collections.abc import Sequence

from autotrain_pl.rendering.base import MessageText, Renderer
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
    instruct_eos_token = "<|im_end|>"  # as Qwen2/2.5-Instruct set it

    def prelude(self) -> str:
        return ""  # ChatML templates in the wild start directly with <|im_start|>.

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        return MessageText(
            header=f"<|im_start|>{message.role}\n", content=message.content, footer="<|im_end|>\n"
        )

    def assistant_header(self, messages: Sequence[Message]) -> str:
        return "<|im_start|>assistant\n"

    def stop_sequences(self) -> list[list[int]]:
        return [[self.token_id("<|im_end|>")]]

    def chat_template(self) -> str:
        return CHATML_TEMPLATE
