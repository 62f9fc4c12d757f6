"""ChatML: ``<|im_start|>{role}\\n{content}<|im_end|>\\n`` (OpenAI, Qwen, many fine-tunes).

Tool use follows Qwen2.5's chat template (the Hermes convention), text for text:

- ``tools`` become a ``# Tools`` section of the system turn, one JSON schema a line inside
  ``<tools></tools>``, after the system message and a blank line. Without a system message the
  section is the whole system turn, as in Qwen3's template; Qwen2.5 would instead prepend its
  default system prompt, which plain ChatML has never added.
- An assistant's calls follow its text (if any), each as ``\\n<tool_call>\\n{"name": ...,
  "arguments": {...}}\\n</tool_call>``; the first starts right after the header when there is no
  text.
- Tool results are written as a ``user`` turn, each wrapped in ``\\n<tool_response>\\n ...
  \\n</tool_response>``; consecutive results share one turn.

``<tool_call>`` and ``<tool_response>`` are text here (Qwen's vocabulary has them as single tokens),
so tools add no special tokens to a model that never uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

from autotrain_pl.rendering.base import MessageText, RenderedConversation, Renderer
from autotrain_pl.rendering.messages import Message
from autotrain_pl.rendering.registry import register_renderer
from autotrain_pl.rendering.tools import hermes_tool_call, parse_hermes_reply, to_json

TOOLS_INTRO = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_OUTRO = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
    '"arguments": <args-json-object>}\n</tool_call>'
)

CHATML_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{- " + repr(TOOLS_INTRO) + " }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- " + repr(TOOLS_OUTRO + "<|im_end|>\n") + " }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}"
    "{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}"
    "{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' and message['tool_calls'] %}"
    "{{- '<|im_start|>assistant' }}"
    "{%- if message['content'] %}{{- '\\n' + message['content'] }}{%- endif %}"
    "{%- for tool_call in message['tool_calls'] %}"
    "{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}"
    '{{- \'\\n<tool_call>\\n{"name": "\' + tool_call.name + \'", "arguments": \' }}'
    "{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif not (tools and loop.first and message['role'] == 'system') %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def tools_section(tools: list[dict]) -> str:
    """The ``# Tools`` text of the system turn (Qwen2.5's words)."""
    return TOOLS_INTRO + "".join("\n" + to_json(tool) for tool in tools) + TOOLS_OUTRO


@register_renderer("chatml")
class ChatMLRenderer(Renderer):
    name = "chatml"
    special_tokens = ("<|im_start|>", "<|im_end|>")
    instruct_eos_token = "<|im_end|>"  # as Qwen2/2.5-Instruct set it
    supports_tools = True

    def prelude(self) -> str:
        return ""  # ChatML templates in the wild start directly with <|im_start|>.

    def render_conversation(
        self, messages: Sequence[Message], tools: list[dict] | None = None
    ) -> RenderedConversation:
        rendered = super().render_conversation(messages)
        if tools:
            section = tools_section(tools)
            if messages and messages[0].role == "system":
                rendered.messages[0].content += "\n\n" + section
            else:
                rendered.prelude += f"<|im_start|>system\n{section}<|im_end|>\n"
        return rendered

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        if message.role == "tool":
            first = index == 0 or messages[index - 1].role != "tool"
            last = index == len(messages) - 1 or messages[index + 1].role != "tool"
            return MessageText(
                header=("<|im_start|>user" if first else "") + "\n<tool_response>\n",
                content=message.content,
                footer="\n</tool_response>" + ("<|im_end|>\n" if last else ""),
            )
        content = message.content
        if message.tool_calls:
            calls = [hermes_tool_call(call) for call in message.tool_calls]
            content = "\n".join([content, *calls] if content else calls)
        return MessageText(
            header=f"<|im_start|>{message.role}\n", content=content, footer="<|im_end|>\n"
        )

    def assistant_header(self, messages: Sequence[Message]) -> str:
        return "<|im_start|>assistant\n"

    def stop_sequences(self) -> list[list[int]]:
        return [[self.token_id("<|im_end|>")]]

    def message_from_reply(self, text: str) -> Message:
        return parse_hermes_reply(text)

    def chat_template(self) -> str:
        return CHATML_TEMPLATE
