"""One CLI error style: expected failures are one line on stderr with a documented exit code,
no traceback unless -v (issue 18)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from quotewatch.cli import build_parser, main


def quotewatch(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("quotewatch")), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("quotewatch ")


def test_help_shows_defaults() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    help_text = sub.choices["simulate"].format_help()  # type: ignore[attr-defined]
    assert "(default: 1000)" in help_text  # --depth
    assert "(default: 0.0)" in help_text  # the fault probabilities


def test_replay_speed_fast_names_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "x.jsonl", "--speed", "fast"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--speed: must be a number" in err
    assert "'fast'" in err
    assert "_speed" not in err


@pytest.mark.parametrize("value", ["99999", "-1"])
def test_simulate_port_out_of_range_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", f"--port={value}"])
    assert exited.value.code == 2
    assert "must be a TCP port from 0 to 65535" in capsys.readouterr().err


def test_simulate_on_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = quotewatch("simulate", "--port", str(taken.getsockname()[1]), "--duration", "1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("quotewatch simulate: ")
    assert "Traceback" not in result.stderr


def test_record_against_nothing_listening_exits_2(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    out = tmp_path / "rec.jsonl"
    result = quotewatch("record", "--url", f"ws://127.0.0.1:{free}/", "--out", str(out),
                        "--duration", "1.5")  # fmt: skip
    assert result.returncode == 2
    assert "never received a frame" in result.stderr
    assert "Traceback" not in result.stderr
