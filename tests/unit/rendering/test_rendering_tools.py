"""Tool use: messages with tool calls and tool results, their loss weights, formats without a tool
convention, and tool calls parsed out of replies. Token parity with Qwen2.5's and Llama 3.1's
templates is in ``test_rendering_templates``."""

from __future__ import annotations

import copy
import json

import pytest
from transformers.utils import get_json_schema

from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering import Message, ToolCall, TrainOnWhat, as_messages, get_renderer
from autotrain_pl.rendering.chatml import CHATML_TEMPLATE

TOOL_FORMATS = ["chatml", "llama3", "native"]
NO_TOOL_FORMATS = ["alpaca", "vicuna", "llama2", "zephyr", "mistral"]


def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The city name.
    """


def call(name, **arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


CONVERSATION = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Paris")]},
    {"role": "tool", "name": "get_weather", "content": "RESULT 22 C"},
    {"role": "assistant", "content": "It is 22 C in Paris."},
]


@pytest.fixture
def make(builtin_tokenizer):
    """``make(chat_format)``: a renderer on its own tokenizer copy; ``native`` uses our ChatML
    template, which takes tools."""

    def build(chat_format: str):
        tok = copy.deepcopy(builtin_tokenizer)
        if chat_format == "native":
            tok.chat_template = CHATML_TEMPLATE
        return get_renderer(chat_format, tok)

    return build


def trained_text(renderer, example) -> str:
    ids = [i for i, w in zip(example.input_ids, example.loss_weights, strict=True) if w]
    return renderer.tokenizer.decode(ids, skip_special_tokens=False)


# -- messages --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        {"role": "assistant", "content": "", "tool_calls": [call("f", x=1, y=[1, "a"])]},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {}}}
            ],
        },
        {"role": "tool", "content": "42", "name": "f", "tool_call_id": "call_1"},
        {"role": "user", "content": "hi", "weight": 0.5},
    ],
)
def test_hugging_face_dicts_round_trip(data):
    message = as_messages([data])[0]
    assert message.to_dict() == data
    assert Message.from_dict(message.to_dict()) == message


def test_tool_calls_are_normalized():
    """OpenAI's JSON-string arguments and a missing or null content are accepted."""
    openai = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
        ],
    }
    message = as_messages([openai])[0]
    assert message.content == ""
    assert message.tool_calls == (ToolCall("f", {"x": 1}, id="c1"),)
    missing = as_messages([{"role": "assistant", "tool_calls": [{"name": "f", "arguments": {}}]}])
    assert missing[0].tool_calls == (ToolCall("f"),)
    built = Message("assistant", tool_calls=[call("f", x=1)])
    assert built.tool_calls == (ToolCall("f", {"x": 1}),)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"role": "user", "content": "hi", "tool_calls": [call("f")]}, "only assistant"),
        (
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {}}}]},
            "no function name",
        ),
        (
            {"role": "assistant", "tool_calls": [{"name": "f", "arguments": "{oops"}]},
            "not valid JSON",
        ),
        ({"role": "assistant", "tool_calls": [{"name": "f", "arguments": [1]}]}, "type list"),
        ({"role": "assistant", "content": None}, "content of type NoneType"),
        ({"role": "assistant"}, "'role' and 'content'"),
    ],
)
def test_bad_tool_messages_are_clear_errors(data, match):
    with pytest.raises(AutotrainError, match=match):
        as_messages([data])


# -- rendering and loss weights ----------------------------------------------------------------
@pytest.mark.parametrize("chat_format", TOOL_FORMATS)
def test_tool_calls_are_trained_and_tool_results_are_not(make, chat_format):
    renderer = make(chat_format)
    example = renderer.build_supervised_example(CONVERSATION, TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    trained = trained_text(renderer, example)
    stop = renderer.tokenizer.convert_ids_to_tokens(renderer.stop_sequences()[0][0])
    assert '"name": "get_weather"' in trained and '{"city": "Paris"}' in trained
    assert trained.count(stop) == 2  # both assistant turns learn to stop
    assert trained.rstrip("\n").endswith(stop) and "22 C in Paris." in trained
    assert (
        "RESULT" not in trained and "weather bot" not in trained and "<|im_start|>" not in trained
    )


@pytest.mark.parametrize("chat_format", TOOL_FORMATS)
def test_tool_results_weights_under_every_rule(make, chat_format):
    renderer = make(chat_format)
    for rule in ("all_messages", "last_assistant_message", "customized"):
        assert "RESULT" not in trained_text(
            renderer, renderer.build_supervised_example(CONVERSATION, rule)
        )
    assert "RESULT" in trained_text(
        renderer, renderer.build_supervised_example(CONVERSATION, "all_tokens")
    )
    weighted = [*CONVERSATION[:3], {**CONVERSATION[3], "weight": 1.0}, CONVERSATION[4]]
    assert "RESULT" in trained_text(renderer, renderer.build_supervised_example(weighted))
    by_role = get_renderer(chat_format, renderer.tokenizer, token_weights={"tool": 1.0})
    assert "RESULT" in trained_text(by_role, by_role.build_supervised_example(CONVERSATION))


@pytest.mark.parametrize("chat_format", TOOL_FORMATS)
def test_prefix_consistency_and_completion_with_tools(make, chat_format):
    """The example starts with its last reply's prompt; ``render_completion`` is its tail."""
    renderer = make(chat_format)
    tools = [get_weather]
    for end in (3, 5):  # the reply that calls the tool, the reply after its result
        messages = CONVERSATION[:end]
        example = renderer.build_supervised_example(messages, tools=tools)
        prompt = renderer.build_generation_prompt(messages[:-1], tools=tools)
        assert example.input_ids[: len(prompt)] == prompt
        completion = renderer.render_completion(messages[:-1], messages[-1:], tools=tools)
        assert example.input_ids[len(prompt) :] == completion.input_ids
        assert example.loss_weights[len(prompt) :] == completion.loss_weights


@pytest.mark.parametrize("chat_format", TOOL_FORMATS)
def test_functions_and_schemas_render_alike(make, chat_format):
    renderer = make(chat_format)
    by_function = renderer.build_generation_prompt(CONVERSATION[:2], tools=[get_weather])
    by_schema = renderer.build_generation_prompt(
        CONVERSATION[:2], tools=[get_json_schema(get_weather)]
    )
    assert by_function == by_schema
    text = renderer.tokenizer.decode(by_function, skip_special_tokens=False)
    assert "The city name." in text
    assert by_function != renderer.build_generation_prompt(CONVERSATION[:2])


def undocumented(city: str) -> str:
    return city


@pytest.mark.parametrize(
    ("tools", "match"),
    [
        ([undocumented], "tool 0 \\(undocumented\\)"),
        (get_weather, "a list of tools"),
        (["get_weather"], "tool 0 is a str"),
    ],
)
def test_bad_tools_are_clear_errors(make, tools, match):
    with pytest.raises(AutotrainError, match=match):
        make("chatml").build_generation_prompt(CONVERSATION[:2], tools=tools)


def test_chatml_tools_without_system_message(make):
    renderer = make("chatml")
    prompt = renderer.build_generation_prompt(CONVERSATION[1:2], tools=[get_weather])
    text = renderer.tokenizer.decode(prompt, skip_special_tokens=False)
    assert text.startswith("<|im_start|>system\n# Tools\n\nYou may call one or more functions")
    assert text.endswith(
        "</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


@pytest.mark.parametrize(
    ("messages", "tools", "match"),
    [
        (
            [CONVERSATION[1], {"role": "assistant", "tool_calls": [call("a"), call("b")]}],
            None,
            "one call per assistant turn",
        ),
        (
            [CONVERSATION[1], {"role": "assistant", "content": "Sure.", "tool_calls": [call("a")]}],
            None,
            "text beside its tool call",
        ),
        ([{"role": "assistant", "content": "Hi"}], [get_weather], "needs a user message first"),
    ],
)
def test_llama3_refuses_what_llama31_cannot_write(make, messages, tools, match):
    with pytest.raises(AutotrainError, match=match):
        make("llama3").build_supervised_example(messages, tools=tools)


@pytest.mark.parametrize("chat_format", NO_TOOL_FORMATS)
@pytest.mark.parametrize(
    ("messages", "tools", "what"),
    [
        (CONVERSATION[1:2], [get_weather], "tools were given"),
        (CONVERSATION[1:3], None, "message 1 has tool calls"),
        (
            [*CONVERSATION[1:2], {"role": "tool", "content": "22"}],
            None,
            "message 1 has role 'tool'",
        ),
    ],
    ids=["tools", "tool_calls", "tool_result"],
)
def test_formats_without_tool_convention_refuse(make, chat_format, messages, tools, what):
    with pytest.raises(AutotrainError) as error:
        make(chat_format).build_supervised_example(messages, tools=tools)
    text = str(error.value)
    assert "\n" not in text and what in text and f"chat_format={chat_format!r}" in text
    assert "'chatml', 'llama3' or 'native'" in text


def test_native_refuses_tools_its_template_ignores(make, chatml_templates):
    renderer = make("native")
    renderer._template = chatml_templates[0]  # plain ChatML: no tools, no tool_calls
    with pytest.raises(AutotrainError, match="does not use them"):
        renderer.build_generation_prompt(CONVERSATION[1:2], tools=[get_weather])
    with pytest.raises(AutotrainError, match="does not write tool_calls"):
        renderer.build_supervised_example(CONVERSATION[:3])


# -- parsing replies ---------------------------------------------------------------------------
def reply_ids(renderer, text: str) -> list[int]:
    stop = renderer.stop_sequences()[0]
    return renderer.tokenizer.encode(text, add_special_tokens=False) + stop


@pytest.mark.parametrize("chat_format", TOOL_FORMATS)
def test_rendered_tool_call_parses_back(make, chat_format):
    renderer = make(chat_format)
    message = as_messages(
        [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [call("get_weather", city="Zürich", days=[1, 2])],
            }
        ]
    )[0]
    completion = renderer.render_completion(CONVERSATION[:2], [message])
    assert renderer.parse_response(completion.input_ids, strict=True) == message


def test_chatml_parses_text_and_several_calls(make):
    renderer = make("chatml")
    text = (
        'Checking both.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
        '\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}'
        "\n</tool_call>"
    )
    message = renderer.parse_response(reply_ids(renderer, text))
    assert message.content == "Checking both."
    assert [c.arguments["city"] for c in message.tool_calls] == ["Paris", "Rome"]
    assert message.tool_call_error is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('<tool_call>\n{"name": "f", "arguments": {"x": 1}\n</tool_call>', "not a valid call"),
        ('<tool_call>\n{"name": "f", "arguments": {}}', "no closing </tool_call>"),
        ('<tool_call>\n{"arguments": {}}\n</tool_call>', 'no "name"'),
        ('<tool_call>\n["f"]\n</tool_call>', "expected a JSON object"),
        (
            'Ok.\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": '
            '"g", "arguments": "{bad"}\n</tool_call>',
            "tool call 2",
        ),
    ],
)
def test_chatml_malformed_call_is_raw_text_with_an_error(make, text, error):
    renderer = make("chatml")
    message = renderer.parse_response(reply_ids(renderer, text))
    assert message.tool_calls == () and message.content == text.strip()
    assert error in message.tool_call_error
    with pytest.raises(AutotrainError, match="malformed tool call"):
        renderer.parse_response(reply_ids(renderer, text), strict=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "f", "parameters": {"x": 1}}', ToolCall("f", {"x": 1})),
        ('<|python_tag|>{"name": "f", "parameters": {}}', ToolCall("f")),
        ('{"name": "f", "arguments": {"x": 1}}', ToolCall("f", {"x": 1})),
    ],
)
def test_llama3_parses_a_json_call(make, text, expected):
    renderer = make("llama3")
    message = renderer.parse_response(reply_ids(renderer, text))
    assert message.tool_calls == (expected,) and message.content == ""


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"name": "f", "parameters": {"x": 1}', "not valid"),
        ('{"name": "f"}', 'no "parameters"'),
        ('{"name": "f", "parameters": {}}; {"name": "g", "parameters": {}}', "not valid"),
    ],
)
def test_llama3_malformed_call_is_raw_text_with_an_error(make, text, error):
    renderer = make("llama3")
    message = renderer.parse_response(reply_ids(renderer, text))
    assert message.tool_calls == () and message.content == text and error in message.tool_call_error


def test_llama3_stops_at_eom_when_the_vocabulary_has_it(make):
    renderer = make("llama3")
    renderer.tokenizer.add_special_tokens({"additional_special_tokens": ["<|eom_id|>"]})
    eom = renderer.tokenizer.convert_tokens_to_ids("<|eom_id|>")
    assert [eom] in renderer.stop_sequences()
    ids = renderer.tokenizer.encode('{"name": "f", "parameters": {}}', add_special_tokens=False)
    assert renderer.parse_response([*ids, eom, 5, 6], strict=True).tool_calls == (ToolCall("f"),)


@pytest.mark.parametrize("chat_format", TOOL_FORMATS)
def test_plain_replies_have_no_tool_calls(make, chat_format):
    renderer = make(chat_format)
    for text in ("It is 22 C.", '{"answer": 4}'):
        message = renderer.parse_response(reply_ids(renderer, text))
        assert message == Message("assistant", text)


# -- SFT data ----------------------------------------------------------------------------------
def test_chat_data_module_encodes_tool_use_rows(tmp_path):
    row = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("get_weather", city="Paris")],
            },
            {"role": "tool", "name": "get_weather", "content": "RESULT 22 C"},
            {"role": "assistant", "content": "It is 22 C in Paris."},
        ]
    }
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    data = ChatDataModule(
        str(tmp_path / "train.jsonl"),
        tokenizer="builtin:tiny",
        chat_format="chatml",
        train_on="all_assistant_messages",
        batch_size=1,
    )
    data.setup("fit")
    encoded = data.train_dataset[0]
    renderer = data.renderer
    expected = renderer.build_supervised_example(row["messages"], "all_assistant_messages")
    assert list(encoded["input_ids"]) == expected.input_ids
    assert list(encoded["loss_weights"]) == expected.loss_weights
    trained = trained_text(renderer, expected)
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' in trained
    assert "RESULT" not in trained
    tool_ids = renderer.tokenizer.encode("RESULT", add_special_tokens=False)
    start = next(
        i
        for i in range(len(expected.input_ids))
        if expected.input_ids[i : i + len(tool_ids)] == tool_ids
    )
    assert expected.loss_weights[start : start + len(tool_ids)] == [0.0] * len(tool_ids)
