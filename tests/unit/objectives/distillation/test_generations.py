"""The teacher-reply cache, without models."""

import json

from autotrain_pl.objectives.distillation.generations import load_generations, save_generations


def test_generation_file_is_reused_only_for_its_fingerprint(tmp_path):
    path = tmp_path / "gen.jsonl"
    rows = [{"content": "<<5>>", "stop_reason": "eos"}, {"content": None, "stop_reason": "length"}]
    save_generations(path, {"fingerprint": "abc", "count": 2}, rows)
    assert json.loads(path.read_text().splitlines()[0])["fingerprint"] == "abc"
    assert load_generations(path, "abc", 2) == rows
    assert load_generations(path, "other", 2) is None
    assert load_generations(path, "abc", 3) is None
    assert load_generations(tmp_path / "missing.jsonl", "abc", 2) is None
