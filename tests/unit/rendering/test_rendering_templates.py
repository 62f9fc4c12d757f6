"""Our token rendering decodes to exactly the text of the models' published Jinja chat templates.

The templates below are written out by hand from the ``tokenizer_config.json`` files published
with the models named, and set on a copy of the builtin tokenizer (which has all their special
tokens). Each renderer's own ``chat_template()`` is checked the same way, for every format.
"""

from __future__ import annotations

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
