"""What the operator sees of service logs: tails for failures, rendered lines for echo."""

from __future__ import annotations

import json
from pathlib import Path

from devstack.logs import is_loud, render_line, tail


def test_tail_starts_at_the_offset_of_the_current_run(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("old run\n")
    offset = log.stat().st_size
    with log.open("a") as handle:
        handle.writelines(f"line {n}\n" for n in range(100))
    text = tail(log, lines=3, start_offset=offset)
    assert text == "line 97\nline 98\nline 99"
    assert "old run" not in tail(log, lines=500, start_offset=offset)


def test_tail_of_a_missing_or_empty_file_says_so(tmp_path: Path) -> None:
    assert "cannot read" in tail(tmp_path / "missing.log")
    (tmp_path / "empty.log").write_text("")
    assert "is empty" in tail(tmp_path / "empty.log")


def test_json_lines_render_compactly_and_other_lines_pass_through() -> None:
    line = json.dumps(
        {"event": "health NOT_SERVING", "problem": "nats", "service": "x", "level": "warning", "timestamp": "t"}
    )
    assert render_line(line) == "WARNING health NOT_SERVING problem=nats"
    assert render_line("Traceback (most recent call last):") == "Traceback (most recent call last):"


def test_errors_mode_shows_warnings_errors_and_raw_output_only() -> None:
    assert is_loud(json.dumps({"event": "x", "level": "error"}))
    assert is_loud(json.dumps({"event": "x", "level": "warning"}))
    assert not is_loud(json.dumps({"event": "x", "level": "info"}))
    assert is_loud("ModuleNotFoundError: No module named 'x'")
    assert not is_loud("   ")
