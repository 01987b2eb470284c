"""The Cloud Run kit: the Dockerfile, the service and job specs, and the runbook's own steps.

No image can be built and no Google Cloud reached from here, so the files are checked as far
as a file can be: their shape, that every command line parses with quotewatch's own parser,
that every environment variable set is one quotewatch reads, and that the runbook's fill-in
step leaves no placeholder behind.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from quotewatch.cli import build_parser
from quotewatch.config import Settings

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "deploy" / "cloudrun"
SECRETS = {"GRAFANA_API_KEY", "GRAFANA_USER", "QW_CATALOG_URI"}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((KIT / name).read_text())
    return data


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    return _load("service.yaml")


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    return _load("maintenance-job.yaml")


def test_service_runs_one_always_on_instance_with_both_probes(service: dict[str, Any]) -> None:
    assert (service["apiVersion"], service["kind"]) == ("serving.knative.dev/v1", "Service")
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["run.googleapis.com/cpu-throttling"] == "false"
    assert annotations["autoscaling.knative.dev/minScale"] == "1"
    assert annotations["autoscaling.knative.dev/maxScale"] == "1"
    assert annotations["run.googleapis.com/cloudsql-instances"] == "PROJECT_ID:REGION:INSTANCE"
    (container,) = template["spec"]["containers"]
    assert container["image"] == "REGION-docker.pkg.dev/PROJECT_ID/quotewatch/quotewatch:TAG"
    assert container["resources"]["limits"]["memory"] == "1Gi"
    port = container["ports"][0]["containerPort"]
    assert port == 8080  # what Cloud Run puts in PORT, which quotewatch reads
    assert container["startupProbe"]["httpGet"] == {"path": "/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
    # Startup may take a while (imports, catalog): the probe allows two minutes.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_service_env_is_production_with_secrets_from_secret_manager(
    service: dict[str, Any],
) -> None:
    (container,) = service["spec"]["template"]["spec"]["containers"]
    env = _env(container)
    assert env["ENVIRONMENT"]["value"] == "production"
    assert env["QW_WAREHOUSE"]["value"].startswith("gs://")
    for name in SECRETS:
        assert "value" not in env[name], f"{name} must come from Secret Manager"
        assert env[name]["valueFrom"]["secretKeyRef"]["key"] == "latest"
    assert "PORT" not in env  # Cloud Run sets it, and refuses a spec that does
    assert "K_SERVICE" not in env


def test_service_args_parse_as_a_run_command(service: dict[str, Any]) -> None:
    (container,) = service["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "run"
    assert args.products == "BTC-USD,ETH-USD"


def test_job_expires_then_compacts_with_the_same_catalog(
    job: dict[str, Any], service: dict[str, Any]
) -> None:
    assert (job["apiVersion"], job["kind"]) == ("run.googleapis.com/v1", "Job")
    (container,) = job["spec"]["template"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"]
    (script,) = container["args"]
    commands = [c.strip().split() for c in script.split("&&")]
    assert commands == [
        ["quotewatch", "storage", "expire", "--older-than", "7d"],
        ["quotewatch", "storage", "compact"],
    ]
    parsed = [build_parser().parse_args(c[1:]) for c in commands]
    assert [p.action for p in parsed] == ["expire", "compact"]
    assert parsed[0].older_than.total_seconds() == 7 * 86_400
    (service_container,) = service["spec"]["template"]["spec"]["containers"]
    service_env, job_env = _env(service_container), _env(container)
    for name in ("QW_CATALOG_URI", "QW_WAREHOUSE", "ENVIRONMENT"):
        assert job_env[name] == service_env[name], name


def test_every_variable_the_kit_sets_is_one_quotewatch_reads(
    service: dict[str, Any], job: dict[str, Any]
) -> None:
    (s,) = service["spec"]["template"]["spec"]["containers"]
    (j,) = job["spec"]["template"]["spec"]["template"]["spec"]["containers"]
    read = set(Settings.environment_variables())
    assert set(_env(s)) | set(_env(j)) <= read
    dockerfile_env = re.findall(r"\b([A-Z][A-Z0-9_]+)=", (ROOT / "Dockerfile").read_text())
    assert set(dockerfile_env) - {"PYTHONUNBUFFERED"} <= read


def test_dockerfile_builds_the_release_and_runs_quotewatch_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["python:3.11-slim", "python:3.11-slim"]
    assert "RUN scripts/build-release /dist" in text
    assert "--no-deps -r /dist/requirements.txt" in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user == ["quotewatch"]
    assert 'ENTRYPOINT ["quotewatch"]' in text
    assert 'CMD ["run"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "dist"} <= set(ignored)


def test_the_runbook_fill_step_leaves_no_placeholder(tmp_path: Path) -> None:
    runbook = (KIT / "README.md").read_text()
    block = re.search(r"```bash\n(P=PROJECT_ID.*?)```", runbook, re.DOTALL)
    assert block is not None, "the runbook's fill-in block"
    lines = [ln for ln in block.group(1).splitlines() if not ln.startswith("gcloud")]
    values = (
        "P=demo-proj R=us-east1 I=cat B=qw-bucket T=abc123 PUSH=https://push.test/api/prom/push"
    )
    script = "\n".join([values if ln.startswith("P=") else ln for ln in lines])
    script = script.replace("> /tmp/quotewatch-btc.yaml", f"> {tmp_path}/service.yaml")
    script += f"\nfill {KIT}/maintenance-job.yaml > {tmp_path}/job.yaml\n"
    subprocess.run(["bash", "-euc", script], check=True, cwd=ROOT)
    for name in ("service.yaml", "job.yaml"):
        text = (tmp_path / name).read_text()
        body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
        leftovers = set(re.findall(r"\b(PROJECT_ID|REGION|INSTANCE|BUCKET|TAG)\b", body))
        assert not leftovers, (name, leftovers)
        assert yaml.safe_load(text)["metadata"]["name"].startswith("quotewatch-")
    service = yaml.safe_load((tmp_path / "service.yaml").read_text())
    (container,) = service["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "us-east1-docker.pkg.dev/demo-proj/quotewatch/quotewatch:abc123"
    assert _env(container)["GRAFANA_PUSH_URL"]["value"] == "https://push.test/api/prom/push"


def test_the_runbook_names_no_real_ids() -> None:
    runbook = (KIT / "README.md").read_text()
    # A real project number or a service-account email outside the placeholder project.
    assert not re.search(r"\b\d{9,}\b", runbook)
    emails = re.findall(r"[\w.-]+@([\w.-]+)\.iam\.gserviceaccount\.com", runbook)
    assert emails
    assert set(emails) == {"PROJECT_ID"}
    for step in ("services enable", "artifacts repositories create", "sql instances create",
                 "secrets create", "services replace", "jobs replace", "scheduler jobs create",
                 "dashboards push"):  # fmt: skip
        assert step in runbook, step
