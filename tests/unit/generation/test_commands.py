import io
import json

import pytest

from autotrain_pl.generation import MessageCompleter, commands

FAST = ["--max_new_tokens", "4", "--temperature", "0"]


@pytest.fixture
def patched_load(model, tokenizer, renderer, monkeypatch):
    """Skip model loading: the commands get the session's tiny model (scriptable)."""
    completer = MessageCompleter(model, tokenizer, renderer)
    monkeypatch.setattr(commands, "_load", lambda args: completer)
    return completer


def read_jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_generate_from_jsonl_file_to_output(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hello"}) + "\n\n"
                       + json.dumps({"messages": [{"role": "user", "content": "2+2?"}]}) + "\n")
    output = tmp_path / "out" / "completions.jsonl"
    code = commands.generate_command(["--model", "builtin:tiny", "--prompts_file", str(prompts),
                                      "--output", str(output), *FAST])
    assert code == 0
    records = read_jsonl(output.read_text())
    assert [r["prompt"] for r in records] == ["Hello", [{"role": "user", "content": "2+2?"}]]
    for record in records:
        assert set(record) >= {"prompt", "completion", "stop_reason", "num_tokens", "tokens_per_s"}
        assert record["stop_reason"] in ("eos", "stop", "length")
        assert 1 <= record["num_tokens"] <= 4 and record["tokens_per_s"] > 0


def test_generate_from_stdin_plain_text_and_json_lines(patched_load, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('first prompt\n{"prompt": "second"}\n\n'))
    assert commands.generate_command(["--model", "builtin:tiny", *FAST, "--batch_size", "1"]) == 0
    records = read_jsonl(capsys.readouterr().out)
    assert [r["prompt"] for r in records] == ["first prompt", "second"]
    assert [r["index"] for r in records] == [0, 1]


def test_generate_positional_raw_prompts_with_stop_and_samples(patched_load, tokenizer,
                                                                force_tokens, capsys):
    with force_tokens(tokenizer.encode("ab\ncd", add_special_tokens=False)):
        code = commands.generate_command(["--model", "builtin:tiny", "--raw", "--stop", "\\n",
                                          "--max_new_tokens", "8", "--temperature", "0", "x y"])
    assert code == 0
    [record] = read_jsonl(capsys.readouterr().out)
    assert record["completion"] == "ab" and record["stop_reason"] == "stop"
    code = commands.generate_command(["--model", "builtin:tiny", "--max_new_tokens", "3",
                                      "--num_return_sequences", "2", "--seed", "0", "p1", "p2"])
    assert code == 0
    assert [r["index"] for r in read_jsonl(capsys.readouterr().out)] == [0, 0, 1, 1]


def test_generate_system_prompt_goes_before_plain_prompts_only(patched_load, monkeypatch,
                                                               tmp_path, capsys):
    seen = []
    build_prompt = patched_load.build_prompt
    monkeypatch.setattr(patched_load, "build_prompt", lambda m: seen.append(m) or build_prompt(m))
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps({"prompt": "plain"}) + "\n"
                    + json.dumps({"messages": [{"role": "user", "content": "own"}]}) + "\n")
    argv = ["--model", "x", "--system", "Be brief.", "--prompts_file", str(path), *FAST]
    assert commands.generate_command(argv) == 0
    assert [[m["role"] if isinstance(m, dict) else m.role for m in p] for p in seen] == [
        ["system", "user"], ["user"]
    ]
    assert seen[0][0]["content"] == "Be brief."


def test_generate_text_file_one_prompt_per_line(patched_load, tmp_path, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("one\ntwo\nthree\n")
    assert commands.generate_command(["--model", "x", "--prompts_file", str(path), *FAST]) == 0
    assert len(read_jsonl(capsys.readouterr().out)) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--top_p", "2", "hi"], "top_p"),
        (["--prompts_file", "/nonexistent/p.jsonl"], "does not exist"),
        (["--temperature", "0", "--num_return_sequences", "2", "hi"], "num_return_sequences"),
        (["--raw", "--system", "Be brief.", "hi"], "--system applies to chat prompts"),
    ],
)
def test_generate_user_errors_print_one_line_and_return_2(patched_load, argv, message, capsys):
    assert commands.generate_command(["--model", "builtin:tiny", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("aitrain: error:")


def test_bad_jsonl_line_is_reported(patched_load, tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "ok"}\nnot json\n')
    assert commands.generate_command(["--model", "x", "--prompts_file", str(path)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_usage_errors_return_2_without_raising(capsys):
    assert commands.generate_command(["--temperature", "0"]) == 2  # --model missing
    assert commands.generate_command(["--help"]) == 0


def test_chat_with_piped_stdin_and_session_commands(patched_load, tokenizer, renderer,
                                                    force_tokens, tmp_path):
    [im_end] = renderer.stop_token_ids()
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    script = "\n".join([
        "hello", f"/save {first}", "/reset", f"/save {tmp_path / 'empty.json'}",
        f"/load {first}", "again", f"/save {second}", "/load", "/bogus", "/exit", "never sent",
    ]) + "\n"
    stdout, stderr = io.StringIO(), io.StringIO()
    with force_tokens(tokenizer.encode(" fine", add_special_tokens=False) + [im_end]):
        code = commands.chat_command(["--model", "builtin:tiny", "--system", "Be nice",
                                      "--max_new_tokens", "5", "--temperature", "0"],
                                     stdin=io.StringIO(script), stdout=stdout, stderr=stderr)
    assert code == 0
    out = stdout.getvalue()
    assert out.count("fine") == 2 and "[history cleared]" in out
    assert "[loaded 2 messages" in out and "unknown command /bogus" in out
    assert "/load needs a path" in stderr.getvalue()
    assert json.loads((tmp_path / "empty.json").read_text())["messages"] == []
    saved = json.loads(second.read_text())
    assert saved["system_prompt"] == "Be nice"
    assert [m["content"] for m in saved["messages"]] == ["hello", "fine", "again", "fine"]


def test_chat_exits_on_eof_and_reports_load_errors(patched_load, tmp_path):
    stdout, stderr = io.StringIO(), io.StringIO()
    code = commands.chat_command(["--model", "x", "--max_new_tokens", "2"],
                                 stdin=io.StringIO(f"/load {tmp_path / 'nope.json'}\n"),
                                 stdout=stdout, stderr=stderr)
    assert code == 0 and "does not exist" in stderr.getvalue()
    assert commands.chat_command(["--model", "x", "--top_p", "0"], stdin=io.StringIO(""),
                                 stdout=stdout, stderr=stderr) == 2
