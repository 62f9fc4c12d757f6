"""The Llama family: ``llama2``, ``llama3`` and ``mistral`` (Mistral-7B-Instruct-v0.1).

Each renderer reproduces, token segment by token segment, the text of the chat template published
with the model on the Hugging Face hub (``chat_template()`` returns that template):

- ``llama2`` (meta-llama/Llama-2-7b-chat-hf; also ``chat_format: llama``, the original autotrain's
  name for it)::

      <s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]

  Content is stripped (``content.strip()``), as in the template. The system message may only come
  first; roles must then alternate user/assistant.
- ``llama3`` (meta-llama/Meta-Llama-3-8B-Instruct)::

      <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>

  Content is trimmed. Any role, anywhere. Turns end with ``<|eot_id|>``, which an export makes the
  tokenizer's ``eos_token`` (as Llama 3.1 Instruct does). Llama 3's own tokenizer keeps the
  header's ``\n\n`` one token; a GPT-2-style BPE (the builtin one) makes it one token at the end
  of a prompt but ``\n``, ``\n`` before text. Prompts are still exactly the template's tokens; the
  trained reply is then tokenized after the prompt, as the model generates it (see ``base``).

  Tool use is written as Llama 3.1's template (meta-llama/Llama-3.1-8B-Instruct) writes it. A
  tool call is the whole assistant turn, ``{"name": ..., "parameters": {...}}``, one call per turn
  (the template refuses more, and drops any text beside the call, which we refuse instead of
  losing). A tool result is an ``ipython`` turn whose content is JSON-encoded, as the template's
  ``tojson`` does to a string: ``"22 C"`` with the quotes. With ``tools`` the whole conversation
  is 3.1's: a system turn that starts ``Environment: ipython``, the knowledge cutoff and the date
  (3.1's default, 26 Jul 2024), and the tool schemas (indented JSON) opening the first user turn.
  Without ``tools`` the layout stays Llama 3's, with no date lines.
- ``mistral`` (the current template of mistralai/Mistral-7B-Instruct-v0.1, which follows
  ``mistral-common``'s V1 tokenizer)::

      <s> [INST] {system}\\n\\n{user} [/INST] {assistant}</s> [INST] {user} [/INST]

  Mistral v0.1 has no system role: an optional first system message is prepended to the first user
  message, followed by a blank line, as that template and ``mistral-common`` do. Roles must
  alternate user/assistant.

``[INST]``, ``[/INST]`` and ``<<SYS>>`` are plain text in the Llama 2 and Mistral vocabularies (a
tokenizer that has them as added tokens, like the builtin one, yields single tokens). Llama 3's
header tokens are real special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.base import (
    MessageText,
    RenderedConversation,
    Renderer,
    has_single_token,
)
from autotrain_pl.rendering.messages import KNOWN_ROLES, Message
from autotrain_pl.rendering.registry import register_renderer
from autotrain_pl.rendering.tools import llama3_tool_call, parse_llama3_reply, to_json

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

LLAMA3_TOOLS_SYSTEM = (
    "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
)
LLAMA3_TOOLS_INTRO = (
    "Given the following functions, please respond with a JSON for a function call with its "
    "proper arguments that best answers the given prompt.\n\n"
    'Respond in the format {"name": function name, "parameters": dictionary of argument name and '
    "its value}.Do not use variables.\n\n"
)

# Llama 3's template, plus Llama 3.1's tool calls, ipython turns and (with tools) system block.
LLAMA3_TEMPLATE = (
    "{%- set has_tools = tools is defined and tools is not none %}"
    "{%- if has_tools %}"
    "{{- '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- " + repr(LLAMA3_TOOLS_SYSTEM) + " }}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{{- messages[0]['content'] | trim }}{%- set messages = messages[1:] %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- if not messages or messages[0]['role'] != 'user' %}"
    "{{- raise_exception('With tools, a user message must come first (after the system "
    "message): it carries the tool definitions.') }}{%- endif %}"
    "{{- '<|start_header_id|>user<|end_header_id|>\\n\\n' }}"
    "{{- " + repr(LLAMA3_TOOLS_INTRO) + " }}"
    "{%- for t in tools %}{{- t | tojson(indent=4) }}{{- '\\n\\n' }}{%- endfor %}"
    "{{- messages[0]['content'] | trim + '<|eot_id|>' }}{%- set messages = messages[1:] %}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if loop.first and not has_tools %}{{- '<|begin_of_text|>' }}{%- endif %}"
    "{%- if message['role'] == 'tool' %}"
    "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}"
    "{{- message['content'] | tojson }}{{- '<|eot_id|>' }}"
    "{%- elif message['tool_calls'] %}"
    "{%- if message['tool_calls'] | length != 1 %}"
    "{{- raise_exception('Llama 3.1 takes one tool call per assistant turn.') }}{%- endif %}"
    "{%- set tool_call = message['tool_calls'][0] %}"
    "{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}"
    '{{- \'<|start_header_id|>assistant<|end_header_id|>\\n\\n{"name": "\' + tool_call.name }}'
    "{{- '\", \"parameters\": ' }}{{- tool_call.arguments | tojson }}{{- '}<|eot_id|>' }}"
    "{%- else %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

MISTRAL_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{%- endif %}"
    "{%- if message['role'] == 'user' %}{%- if loop.first and system_message is defined %}"
    "{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token}}"
    "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the "
    "exception of an initial optional system message!') }}{%- endif %}{%- endfor %}"
)


def check_alternating(name: str, messages: Sequence[Message]) -> None:
    """An optional first system message, then user/assistant/user/... (as the templates demand)."""
    expected = "user"
    for i, message in enumerate(messages):
        if message.role == "system":
            if i != 0:
                raise AutotrainError(
                    f"message {i} is a system message; chat_format={name!r} allows a system "
                    "message only as the first message"
                )
            if len(messages) == 1:
                raise AutotrainError(
                    f"chat_format={name!r} needs a user message after the system message"
                )
            continue
        if message.role != expected:
            raise AutotrainError(
                f"message {i} has role {message.role!r} where chat_format={name!r} expects "
                f"{expected!r}: after an optional system message, roles must alternate "
                "user/assistant/user/..."
            )
        expected = "assistant" if expected == "user" else "user"


class _InstRenderer(Renderer):
    """Shared by llama2 and mistral: ``[INST] ... [/INST]`` turns, reply ends with EOS."""

    supported_roles = ("system", "user", "assistant")

    def check_roles(self, messages: Sequence[Message]) -> None:
        super().check_roles(messages)
        check_alternating(self.name, messages)

    def assistant_header(self, messages: Sequence[Message]) -> str:
        if not messages or messages[-1].role != "user":
            raise AutotrainError(
                f"chat_format={self.name!r} can only prompt for a reply after a user message"
            )
        return ""  # the reply follows [/INST] directly

    def stop_sequences(self) -> list[list[int]]:
        return [[self.eos_id()]]


@register_renderer("llama2", "llama")
class Llama2Renderer(_InstRenderer):
    """The Llama-2 chat format: ``<s>[INST] <<SYS>>...<</SYS>> user [/INST] reply </s>``.

    Also selectable as ``chat_format: llama``: the original autotrain's ``ChatFormat.LLAMA``
    (and its ``--chat-format llama``) renders ``[INST]``/``<<SYS>>`` turns, i.e. this format.
    Unlike that renderer, no default system prompt is inserted when the data has none, as in
    the template published with Llama-2-chat.
    """

    name = "llama2"

    def prelude(self) -> str:
        return ""  # BOS opens every user turn instead

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        bos = self.tokenizer.bos_token or ""
        if message.role == "system":
            # The template strips "<<SYS>>...<</SYS>>\n\n" + user as one string, so a blank user
            # message also loses the blank lines after <</SYS>>.
            user_blank = not messages[index + 1].content.strip()
            return MessageText(
                header=bos + "[INST] <<SYS>>\n",
                content=message.content,
                footer="\n<</SYS>>" if user_blank else "\n<</SYS>>\n\n",
            )
        if message.role == "user":
            if index > 0 and messages[index - 1].role == "system":
                return MessageText(content=message.content.rstrip(), footer=" [/INST]")
            return MessageText(
                header=bos + "[INST]", content=" " + message.content.strip(), footer=" [/INST]"
            )
        return MessageText(content=" " + message.content.strip() + " ", footer=self.eos_token())

    def chat_template(self) -> str:
        return LLAMA2_TEMPLATE


@register_renderer("mistral")
class MistralRenderer(_InstRenderer):
    name = "mistral"

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        if message.role == "system":
            return MessageText(header=" [INST]", content=" " + message.content, footer="\n\n")
        if message.role == "user":
            after_system = index > 0 and messages[index - 1].role == "system"
            return MessageText(
                header="" if after_system else " [INST]",
                content=message.content if after_system else " " + message.content,
                footer=" [/INST]",
            )
        return MessageText(content=" " + message.content, footer=self.eos_token())

    def chat_template(self) -> str:
        return MISTRAL_TEMPLATE


@register_renderer("llama3")
class Llama3Renderer(Renderer):
    name = "llama3"
    special_tokens = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
    supported_roles = KNOWN_ROLES
    instruct_eos_token = "<|eot_id|>"  # as Llama 3.1 Instruct sets it
    supports_tools = True

    def prelude(self) -> str:
        return "<|begin_of_text|>"

    def check_roles(self, messages: Sequence[Message]) -> None:
        super().check_roles(messages)
        for i, message in enumerate(messages):
            if len(message.tool_calls) > 1:
                raise AutotrainError(
                    f"message {i} has {len(message.tool_calls)} tool calls; chat_format='llama3' "
                    "(Llama 3.1) takes one call per assistant turn: split them into turns"
                )
            if message.tool_calls and message.content.strip():
                raise AutotrainError(
                    f"message {i} has text beside its tool call; chat_format='llama3' (Llama 3.1) "
                    "writes a tool call as the whole turn and would drop the text: remove it"
                )

    def render_conversation(
        self, messages: Sequence[Message], tools: list[dict] | None = None
    ) -> RenderedConversation:
        rendered = super().render_conversation(messages)
        if tools is None:
            return rendered
        system = self._header("system") + LLAMA3_TOOLS_SYSTEM
        first = 1 if messages and messages[0].role == "system" else 0
        if first:
            rendered.messages[0].header = system
        else:
            rendered.prelude += system + "<|eot_id|>"
        if first >= len(messages) or messages[first].role != "user":
            raise AutotrainError(
                "chat_format='llama3' with tools needs a user message first (after the system "
                "message): Llama 3.1 writes the tool definitions into it"
            )
        definitions = "".join(to_json(tool, indent=4) + "\n\n" for tool in tools)
        rendered.messages[first].header += LLAMA3_TOOLS_INTRO + definitions
        return rendered

    def render_message(self, index: int, messages: Sequence[Message]) -> MessageText:
        message = messages[index]
        if message.role == "tool":
            content = to_json(message.content)  # the template's tojson quotes a string result
            return MessageText(self._header("ipython"), content, footer="<|eot_id|>")
        if message.tool_calls:
            content = llama3_tool_call(message.tool_calls[0])
        else:
            content = message.content.strip()
        return MessageText(self._header(message.role), content, footer="<|eot_id|>")

    @staticmethod
    def _header(role: str) -> str:
        return f"<|start_header_id|>{role}<|end_header_id|>\n\n"

    def assistant_header(self, messages: Sequence[Message]) -> str:
        return self._header("assistant")

    def stop_sequences(self) -> list[list[int]]:
        stops = [[self.token_id("<|eot_id|>")]]
        if has_single_token(self.tokenizer, "<|eom_id|>"):
            stops.append([self.token_id("<|eom_id|>")])  # Llama 3.1 ends built-in tool calls so
        eos = self.tokenizer.eos_token_id
        if eos is not None and [eos] not in stops:
            stops.append([eos])  # <|end_of_text|> in the Llama 3 vocabulary
        return stops

    def message_from_reply(self, text: str) -> Message:
        return parse_llama3_reply(text)

    def chat_template(self) -> str:
        return LLAMA3_TEMPLATE
