"""Zephyr (HuggingFaceH4/zephyr-7b-beta)::

    <|system|>\\n{system}</s>\\n<|user|>\\n{user}</s>\\n<|assistant|>\\n{assistant}</s>\\n

Every turn ends with EOS and a newline; the generation prompt is ``<|assistant|>\\n``. As in the
published template there is no BOS. The role markers are plain text in Zephyr's (Mistral)
vocabulary, so they are encoded as text; a tokenizer that has them as added tokens (the builtin
one) yields single tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from autotrain_pl.rendering.base import MessageText, Renderer
from autotrain_pl.rendering.messages import Message
from autotrain_pl.rendering.registry import register_renderer

# The template as published; transformers renders it with trim_blocks/lstrip_blocks, so only the
# newline after each ``{{ ... }}`` survives.
ZEPHYR_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)


@register_renderer("zephyr")
class ZephyrRenderer(Renderer):
    name = "zephyr"
    supported_roles = ("system", "user", "assistant")

    def prelude(self) -> str:
        return ""

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        return MessageText(
            header=f"<|{message.role}|>\n",
            content=message.content,
            footer=self.eos_token() + "\n",
        )

    def assistant_header(self, messages: Sequence[Message]) -> str:
        return "<|assistant|>\n"

    def stop_sequences(self) -> list[list[int]]:
        return [[self.eos_id()]]

    def chat_template(self) -> str:
        return ZEPHYR_TEMPLATE
