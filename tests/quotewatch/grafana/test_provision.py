"""Pushing dashboards through Grafana's HTTP API, against a shape-checking stand-in server."""

from __future__ import annotations

import logging
import socket

import pytest
from quotewatch.grafana.build import build_all
from quotewatch.grafana.provision import GrafanaAuthError, ProvisionError, push_dashboards

from .conftest import TOKEN, FakeGrafana, run_cli

UIDS = {"quotewatch-pipeline-health", "quotewatch-system-performance"}


def test_push_without_folder_uploads_both_dashboards(fake_grafana: FakeGrafana) -> None:
    pushed = push_dashboards(fake_grafana.url, TOKEN, build_all().values())

    assert fake_grafana.problems == []
    assert {p.uid for p in pushed} == UIDS
    assert fake_grafana.requests == [("POST", "/api/dashboards/db")] * 2
    for uid, stored in fake_grafana.dashboards.items():
        assert "folderUid" not in stored
        assert stored["overwrite"] is True
        assert stored["message"].startswith("quotewatch ")
        assert stored["dashboard"] == next(d for d in build_all().values() if d["uid"] == uid)
    assert {p.url for p in pushed} == {f"{fake_grafana.url}/d/{uid}/slug" for uid in UIDS}
    assert {p.version for p in pushed} == {1}


def test_push_again_overwrites(fake_grafana: FakeGrafana) -> None:
    push_dashboards(fake_grafana.url, TOKEN, build_all().values())
    pushed = push_dashboards(fake_grafana.url + "/", TOKEN, build_all().values())

    assert {p.version for p in pushed} == {2}
    assert fake_grafana.problems == []


def test_existing_folder_is_found_by_title_or_uid(fake_grafana: FakeGrafana) -> None:
    for folder in ("Existing", "existing-uid"):
        push_dashboards(fake_grafana.url, TOKEN, build_all().values(), folder=folder)

    assert fake_grafana.problems == []
    assert ("POST", "/api/folders") not in fake_grafana.requests
    assert {d["folderUid"] for d in fake_grafana.dashboards.values()} == {"existing-uid"}


def test_missing_folder_is_created_once(fake_grafana: FakeGrafana) -> None:
    push_dashboards(fake_grafana.url, TOKEN, build_all().values(), folder="quotewatch")
    push_dashboards(fake_grafana.url, TOKEN, build_all().values(), folder="quotewatch")

    assert fake_grafana.problems == []
    assert fake_grafana.requests.count(("POST", "/api/folders")) == 1
    created = next(f for f in fake_grafana.folders if f["title"] == "quotewatch")
    assert {d["folderUid"] for d in fake_grafana.dashboards.values()} == {created["uid"]}


def test_wrong_token_is_a_clear_error_without_the_token(fake_grafana: FakeGrafana) -> None:
    wrong = "glsa_wrong-token-secret"
    with pytest.raises(GrafanaAuthError) as caught:
        push_dashboards(fake_grafana.url, wrong, build_all().values())

    message = str(caught.value)
    assert "HTTP 401" in message
    assert fake_grafana.url in message
    assert "GRAFANA_DASHBOARD_TOKEN" in message
    assert wrong not in message
    assert fake_grafana.dashboards == {}


def test_server_error_names_status_and_redacts_an_echoed_token(
    fake_grafana: FakeGrafana, caplog: pytest.LogCaptureFixture
) -> None:
    fake_grafana.fail_with = 500
    with caplog.at_level(logging.DEBUG), pytest.raises(ProvisionError) as caught:
        push_dashboards(fake_grafana.url, TOKEN, build_all().values())

    message = str(caught.value)
    assert "HTTP 500" in message
    assert "database locked" in message
    assert "<token>" in message
    assert TOKEN not in message
    assert TOKEN not in caplog.text


def test_token_never_logged_on_success(
    fake_grafana: FakeGrafana, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        push_dashboards(fake_grafana.url, TOKEN, build_all().values(), folder="new one")

    assert "pushed dashboard" in caplog.text
    assert TOKEN not in caplog.text


def test_unreachable_grafana_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProvisionError, match=f"cannot reach Grafana at http://127.0.0.1:{port}"):
        push_dashboards(f"http://127.0.0.1:{port}", TOKEN, build_all().values(), timeout=2)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://grafana.example", "is not an http"),
        ("grafana.example", "is not an http"),
        ("https://admin:hunter2@grafana.example", "must not contain credentials"),
    ],
)
def test_bad_url_is_rejected_before_any_request(url: str, expected: str) -> None:
    with pytest.raises(ProvisionError, match=expected) as caught:
        push_dashboards(url, TOKEN, build_all().values())
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("token", ["", "glsa_abc\n", "glsa abc", "glsa_é"])
def test_unusable_token_is_rejected_without_echoing_it(token: str) -> None:
    with pytest.raises(ProvisionError, match="token is empty or contains") as caught:
        push_dashboards("http://127.0.0.1:9", token, build_all().values())
    if token.strip():
        assert token.strip() not in str(caught.value)


def test_cli_push_reads_the_token_from_the_environment(
    fake_grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRAFANA_DASHBOARD_TOKEN", TOKEN)

    status = run_cli(["dashboards", "push", "--grafana-url", fake_grafana.url, "--folder", "qw"])

    out, err = capsys.readouterr()
    assert status == 0, err
    assert set(fake_grafana.dashboards) == UIDS
    assert f"{fake_grafana.url}/d/quotewatch-pipeline-health/slug" in out
    assert TOKEN not in out + err


def test_cli_push_with_a_wrong_token_fails_cleanly(
    fake_grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRAFANA_DASHBOARD_TOKEN", raising=False)

    status = run_cli(
        ["dashboards", "push", "--grafana-url", fake_grafana.url, "--token", "glsa_bad"]
    )

    out, err = capsys.readouterr()
    assert status == 1
    assert "rejected the token" in err
    assert "glsa_bad" not in out + err


def test_cli_push_without_a_token_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRAFANA_DASHBOARD_TOKEN", raising=False)

    status = run_cli(["dashboards", "push", "--grafana-url", "http://127.0.0.1:9"])

    assert status == 2
    assert "GRAFANA_DASHBOARD_TOKEN" in capsys.readouterr().err
