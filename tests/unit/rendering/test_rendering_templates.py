"""Our token rendering decodes to exactly the text of the models' published Jinja chat templates.

The templates below are written out by hand from the ``tokenizer_config.json`` files published
with the models named, and set on a copy of the builtin tokenizer (which has all their special
tokens). Each renderer's own ``chat_template()`` is checked the same way, for every format. Tool
use is checked against Qwen2.5's and Llama 3.1's templates (verbatim, and compared with TRL's
copies where TRL is installed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering import Message, get_renderer

# Qwen/Qwen2-7B-Instruct (ChatML with a default system prompt).
QWEN2_CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# The plain ChatML template (e.g. teknium/OpenHermes-2.5-Mistral-7B).
PLAIN_CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# HuggingFaceH4/zephyr-7b-beta
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)
# meta-llama/Llama-2-7b-chat-hf
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)
# meta-llama/Meta-Llama-3-8B-Instruct (bos_token is <|begin_of_text|> there).
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# mistralai/Mistral-7B-Instruct-v0.1 (current template: system prepended to the first user turn).
MISTRAL_V01 = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""
# lmsys/vicuna-7b-v1.5: FastChat's "vicuna_v1.1" conversation (sep_style ADD_COLON_TWO, sep=" ",
# sep2="</s>") written as a chat template; FastChat's Llama tokenizer adds the BOS.
VICUNA_V11 = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set loop_messages = messages[1:] %}{% else %}"
    '{% set system = "A chat between a curious user and an artificial intelligence assistant. '
    "The assistant gives helpful, detailed, and polite answers to the user's questions.\" %}"
    "{% set loop_messages = messages %}{% endif %}{{ bos_token + system + ' ' }}"
    "{% for message in loop_messages %}"
    "{% set role = 'USER' if message['role'] == 'user' else 'ASSISTANT' %}"
    "{% set sep = ' ' if loop.index0 % 2 == 0 else eos_token %}"
    "{{ role + ': ' + message['content'] + sep }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# (chat_format, template, extra variables for apply_chat_template)
PUBLISHED = [
    ("chatml", QWEN2_CHATML, {}),
    ("chatml", PLAIN_CHATML, {}),
    ("zephyr", ZEPHYR, {}),
    ("llama2", LLAMA2, {}),
    ("llama3", LLAMA3, {"bos_token": "<|begin_of_text|>"}),
    ("mistral", MISTRAL_V01, {}),
    ("vicuna", VICUNA_V11, {}),
]

SYSTEM = Message("system", "You are a pirate.\nAnswer in one line.")
TURNS = [
    Message("user", "What is 7 times 6?"),
    Message("assistant", "Arr, 42."),
    Message("user", "Say hi 👋 in French, then count: 1 2 3"),
    Message("assistant", "Bonjour!\n1 2 3"),
    Message("user", "Thanks."),
    Message("assistant", "Ahoy."),
]
# Leading/trailing whitespace shows where a format strips content.
MESSY = [
    Message("user", "  padded question \n"),
    Message("assistant", " padded answer  "),
    Message("user", "second"),
    Message("assistant", "\nlast\n"),
]
CONVERSATIONS = {
    "with_system": [SYSTEM, *TURNS],
    "without_system": TURNS,
    "messy": [SYSTEM, *MESSY],
    "single_turn": [SYSTEM, *TURNS[:2]],
}
# A template that adds a default system prompt differs from our renderer without a system message.
NEEDS_SYSTEM = {QWEN2_CHATML}


def dicts(messages):
    return [{"role": m.role, "content": m.content} for m in messages]


def with_template(tokenizer, template):
    tokenizer.chat_template = template
    return tokenizer


def assert_same_text(renderer, tokenizer, messages, variables):
    decode = renderer.tokenizer.decode
    example = renderer.build_supervised_example(messages)
    expected = tokenizer.apply_chat_template(dicts(messages), tokenize=False, **variables)
    assert decode(example.input_ids, skip_special_tokens=False) == expected
    prompt = renderer.build_generation_prompt(messages[:-1])
    expected_prompt = tokenizer.apply_chat_template(
        dicts(messages[:-1]), tokenize=False, add_generation_prompt=True, **variables
    )
    assert decode(prompt, skip_special_tokens=False) == expected_prompt


@pytest.mark.parametrize("case", sorted(CONVERSATIONS))
@pytest.mark.parametrize(("chat_format", "template", "variables"), PUBLISHED)
def test_matches_published_template(tokenizer, chat_format, template, variables, case):
    messages = CONVERSATIONS[case]
    if template in NEEDS_SYSTEM and messages[0].role != "system":
        pytest.skip("the template adds a default system prompt")
    renderer = get_renderer(chat_format, tokenizer)
    assert_same_text(renderer, with_template(tokenizer, template), messages, variables)


@pytest.mark.parametrize("case", sorted(CONVERSATIONS))
@pytest.mark.parametrize(
    "chat_format", ["chatml", "alpaca", "llama2", "llama3", "mistral", "vicuna", "zephyr"]
)
def test_own_chat_template_matches_tokens(tokenizer, chat_format, case):
    renderer = get_renderer(chat_format, tokenizer)
    template = renderer.chat_template()
    assert isinstance(template, str) and template
    assert_same_text(renderer, with_template(tokenizer, template), CONVERSATIONS[case], {})


def test_published_llama2_user_blank_after_system(tokenizer):
    """The template strips system block + user together: a blank user loses the blank lines."""
    messages = [SYSTEM, Message("user", "  \n"), Message("assistant", "ok")]
    renderer = get_renderer("llama2", tokenizer)
    assert_same_text(renderer, with_template(tokenizer, LLAMA2), messages, {})


def test_native_matches_published_templates(tokenizer):
    """``native`` on each published template reproduces the template's text and prompt tokens."""
    for _, template, variables in PUBLISHED:
        tok = with_template(tokenizer, template)
        renderer = get_renderer("native", tok)
        messages = CONVERSATIONS["with_system"]
        example = renderer.build_supervised_example(messages)
        expected = tok.apply_chat_template(dicts(messages), tokenize=False, **variables)
        if variables:  # native renders with the tokenizer's own special tokens
            expected = expected.replace(variables["bos_token"], tok.bos_token)
        assert tok.decode(example.input_ids, skip_special_tokens=False) == expected


def test_mistral_rejects_late_system_like_template(tokenizer):
    tok = with_template(tokenizer, MISTRAL_V01)
    messages = [*TURNS[:2], SYSTEM, *TURNS[2:4]]
    with pytest.raises(Exception, match="alternate"):
        tok.apply_chat_template(dicts(messages), tokenize=False)
    with pytest.raises(AutotrainError):
        get_renderer("mistral", tok).build_supervised_example(messages)


# -- tool use ------------------------------------------------------------------------------------
# Qwen/Qwen2.5-7B-Instruct, verbatim (the copy TRL ships as chat_templates/qwen2_5.jinja).
QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
# meta-llama/Llama-3.1-8B-Instruct, verbatim (the copy TRL ships as chat_templates/llama3_1.jinja).
LLAMA31 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""
# Without tools, our llama3 keeps Llama 3's layout: 3.1's system turn less its date lines.
LLAMA31_DATE_LINES = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: The city, e.g. "Paris".
        unit: "celsius" or "fahrenheit".
    """


CONVERTER = {
    "type": "function",
    "function": {
        "name": "convert",
        "description": "Convert an amount between currencies (€, ¥, ...).",
        "parameters": {
            "type": "object",
            "properties": {"amount": {"type": "number"}, "to": {"type": "string"}},
            "required": ["amount", "to"],
        },
    },
}
TOOLS = [get_weather, CONVERTER]


def call(name, **arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


TOOL_SYSTEM = {"role": "system", "content": "You are a travel agent.\nBe brief."}
ONE_CALL = [  # one call per turn, the only layout Llama 3.1 takes
    {"role": "user", "content": "  Weather in Paris? "},
    {"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Paris")]},
    {"role": "tool", "name": "get_weather", "content": '{"temp": 22, "sky": "sunny ☀"}'},
    {"role": "assistant", "content": "Sunny, 22 °C."},
    {"role": "user", "content": "And 100 EUR in yen?"},
    {"role": "assistant", "tool_calls": [call("convert", amount=100, to="JPY")]},
    {"role": "tool", "tool_call_id": "call_2", "content": "16250"},
    {"role": "assistant", "content": "About ¥16,250."},
]
PARALLEL_CALLS = [  # text beside calls, two calls, two results in one turn (Hermes / Qwen2.5)
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [call("get_weather", city="Paris"), call("get_weather", city="Rome")],
    },
    {"role": "tool", "name": "get_weather", "content": "22"},
    {"role": "tool", "name": "get_weather", "content": "25"},
    {"role": "assistant", "content": "Paris 22, Rome 25."},
]
TOOL_CONVERSATIONS = {
    "one_call": [TOOL_SYSTEM, *ONE_CALL],
    "parallel_calls": [TOOL_SYSTEM, *PARALLEL_CALLS],
    "no_system": ONE_CALL,
}
LLAMA3_CASES = ("one_call", "no_system")  # Llama 3.1 takes one call per turn


def assert_same_tool_rendering(renderer, tokenizer, messages, tools, variables, fix=str):
    """Supervised text, and every generation prompt before an assistant turn token for token,
    equal the template's (after ``fix``, which maps the template's text to ours); the example
    starts with its last reply's prompt."""
    decode = tokenizer.decode
    example = renderer.build_supervised_example(messages, tools=tools)
    expected = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, **variables)
    assert decode(example.input_ids, skip_special_tokens=False) == fix(expected)
    prompt = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = renderer.build_generation_prompt(messages[:k], tools=tools)
        text = tokenizer.apply_chat_template(
            messages[:k], tools=tools, tokenize=False, add_generation_prompt=True, **variables
        )
        assert prompt == tokenizer.encode(fix(text), add_special_tokens=False)
    assert prompt and example.input_ids[: len(prompt)] == prompt


@pytest.mark.parametrize("with_tools", [False, True], ids=["no_tools", "tools"])
@pytest.mark.parametrize("case", ["one_call", "parallel_calls"])
def test_chatml_matches_qwen25_with_tools(tokenizer, case, with_tools):
    tools = TOOLS if with_tools else None
    renderer = get_renderer("chatml", tokenizer)
    messages = TOOL_CONVERSATIONS[case]
    assert_same_tool_rendering(renderer, with_template(tokenizer, QWEN25), messages, tools, {})


@pytest.mark.parametrize("with_tools", [False, True], ids=["no_tools", "tools"])
@pytest.mark.parametrize("case", LLAMA3_CASES)
def test_llama3_matches_llama31_with_tools(tokenizer, case, with_tools):
    """With tools, Llama 3.1's text exactly; without, Llama 3's layout (no date lines)."""
    tools = TOOLS if with_tools else None
    renderer = get_renderer("llama3", tokenizer)
    messages = TOOL_CONVERSATIONS[case]
    variables = {"bos_token": "<|begin_of_text|>"}

    def fix(text):
        return text if with_tools else text.replace(LLAMA31_DATE_LINES, "")

    if not with_tools and messages[0]["role"] != "system":  # 3.1 always writes a system turn
        pytest.skip("Llama 3.1 writes an empty system turn that Llama 3's layout does not have")
    tok = with_template(tokenizer, LLAMA31)
    assert_same_tool_rendering(renderer, tok, messages, tools, variables, fix)


@pytest.mark.parametrize("with_tools", [False, True], ids=["no_tools", "tools"])
@pytest.mark.parametrize(
    ("template", "case"),
    [
        (QWEN25, "one_call"),
        (QWEN25, "parallel_calls"),
        (LLAMA31, "one_call"),
        (LLAMA31, "no_system"),
    ],
    ids=["qwen25-one_call", "qwen25-parallel_calls", "llama31-one_call", "llama31-no_system"],
)
def test_native_passes_tools_through(tokenizer, template, case, with_tools):
    """``native`` on the published templates: the template's own text and prompt tokens."""
    tok = with_template(tokenizer, template)
    renderer = get_renderer("native", tok)
    tools = TOOLS if with_tools else None
    assert_same_tool_rendering(renderer, tok, TOOL_CONVERSATIONS[case], tools, {})


@pytest.mark.parametrize("with_tools", [False, True], ids=["no_tools", "tools"])
@pytest.mark.parametrize(
    ("chat_format", "case"),
    [("chatml", case) for case in TOOL_CONVERSATIONS] + [("llama3", c) for c in LLAMA3_CASES],
)
def test_own_chat_template_matches_tokens_with_tools(tokenizer, chat_format, case, with_tools):
    renderer = get_renderer(chat_format, tokenizer)
    tok = with_template(tokenizer, renderer.chat_template())
    tools = TOOLS if with_tools else None
    assert_same_tool_rendering(renderer, tok, TOOL_CONVERSATIONS[case], tools, {})


@pytest.mark.parametrize(("name", "template"), [("qwen2_5", QWEN25), ("llama3_1", LLAMA31)])
def test_published_tool_templates_are_verbatim(name, template):
    """The copies above are TRL's, which TRL checks weekly against the models' hub repos."""
    trl = pytest.importorskip("trl")
    path = Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"
    if not path.exists():
        pytest.skip(f"this trl has no {path.name}")
    assert path.read_text(encoding="utf-8") == template
