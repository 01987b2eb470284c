"""The Cloud Run kit (Dockerfile, deploy/cloudrun/) says what quotewatch needs and reads.

No Docker daemon or Google Cloud is reachable here, so these check the files themselves: the
settings Cloud Run needs, that every environment variable set is one quotewatch reads, that
every quotewatch command line in the kit parses with quotewatch's own parser, that the
runbook's `sed` step fills in every placeholder, and that no real project id slipped in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from quotewatch.cli import build_parser
from quotewatch.config import Settings

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "deploy" / "cloudrun"
SERVICE = KIT / "service.yaml"
JOB = KIT / "maintenance-job.yaml"
SCHEDULER = KIT / "scheduler.sh"
RUNBOOK = KIT / "README.md"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SOURCE_TREES = (ROOT / "packages/quotewatch/src", ROOT / "packages/qw-metrics/src")

PLACEHOLDERS = ("PROJECT_ID", "REGION", "INSTANCE", "BUCKET", "TAG", "GRAFANA_PROMETHEUS_HOST")
IMAGE = "REGION-docker.pkg.dev/PROJECT_ID/quotewatch/quotewatch:TAG"
CLOUDSQL = "PROJECT_ID:REGION:INSTANCE"
SECRET_ENV = {
    "QW_CATALOG_URI": "quotewatch-catalog-uri",
    "GRAFANA_USER": "quotewatch-grafana-user",
    "GRAFANA_API_KEY": "quotewatch-grafana-api-key",
}


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    return _load(SERVICE)


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    return _load(JOB)


def _service_container(service: dict[str, Any]) -> dict[str, Any]:
    containers = service["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _job_task_spec(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job["spec"]["template"]["spec"]["template"]["spec"])


def _job_container(job: dict[str, Any]) -> dict[str, Any]:
    containers = _job_task_spec(job)["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = container["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {e["name"]: e for e in entries}


def _keys(node: Any) -> set[str]:
    """Every mapping key anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


# --- service.yaml ---------------------------------------------------------------------------


def test_service_is_a_knative_service_for_one_product_group(service: dict[str, Any]) -> None:
    assert service["apiVersion"] == "serving.knative.dev/v1"
    assert service["kind"] == "Service"
    assert service["metadata"]["name"] == "quotewatch-btc"
    assert _service_container(service)["args"] == ["run", "--products", "BTC-USD,ETH-USD"]


def test_revision_runs_one_instance_with_cpu_always_allocated(service: dict[str, Any]) -> None:
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    # Strings, not YAML booleans or ints: Cloud Run rejects non-string annotation values.
    assert annotations["run.googleapis.com/cpu-throttling"] == "false"
    assert annotations["autoscaling.knative.dev/minScale"] == "1"
    assert annotations["autoscaling.knative.dev/maxScale"] == "1"
    assert annotations["run.googleapis.com/cloudsql-instances"] == CLOUDSQL
    assert all(isinstance(v, str) for v in annotations.values())


def test_service_spec_has_a_timeout_and_no_grace_period(service: dict[str, Any]) -> None:
    spec = service["spec"]["template"]["spec"]
    assert spec["timeoutSeconds"] == 300
    assert spec["serviceAccountName"] == "quotewatch-run@PROJECT_ID.iam.gserviceaccount.com"
    # Cloud Run's grace period is a fixed 10 s; the field does not exist there.
    assert "terminationGracePeriodSeconds" not in _keys(service)


def test_probes_check_ready_at_startup_and_health_after(service: dict[str, Any]) -> None:
    container = _service_container(service)
    assert [p["containerPort"] for p in container["ports"]] == [8080]
    startup, liveness = container["startupProbe"], container["livenessProbe"]
    assert startup["httpGet"] == {"path": "/ready", "port": 8080}
    assert liveness["httpGet"] == {"path": "/health", "port": 8080}
    for probe in (startup, liveness):
        assert probe["timeoutSeconds"] <= probe["periodSeconds"]
        assert probe["failureThreshold"] >= 3
    # A startup window of 1 to 4 minutes: a cold start needs well over 10 s.
    startup_budget = startup.get("initialDelaySeconds", 0) + (
        startup["periodSeconds"] * startup["failureThreshold"]
    )
    assert 60 <= startup_budget <= 240
    # Liveness restarts after about 30 s without feed messages, not on one slow reply.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] == 30


def test_service_has_one_gib_and_one_cpu(service: dict[str, Any]) -> None:
    assert _service_container(service)["resources"]["limits"] == {"memory": "1Gi", "cpu": "1"}


def test_images_are_the_artifact_registry_placeholder(
    service: dict[str, Any], job: dict[str, Any]
) -> None:
    assert _service_container(service)["image"] == IMAGE
    assert _job_container(job)["image"] == IMAGE


def test_credentials_come_from_secret_manager_never_plain_values(
    service: dict[str, Any], job: dict[str, Any]
) -> None:
    service_env = _env(_service_container(service))
    for name, secret in SECRET_ENV.items():
        assert "value" not in service_env[name], name
        assert service_env[name]["valueFrom"] == {"secretKeyRef": {"name": secret, "key": "latest"}}
    job_env = _env(_job_container(job))
    assert job_env["QW_CATALOG_URI"] == service_env["QW_CATALOG_URI"]
    # The job needs no Grafana credentials: it pushes no metrics.
    assert not {"GRAFANA_USER", "GRAFANA_API_KEY", "GRAFANA_PUSH_URL"} & set(job_env)


def test_plain_settings_for_production(service: dict[str, Any], job: dict[str, Any]) -> None:
    env = _env(_service_container(service))
    values = {name: e["value"] for name, e in env.items() if "value" in e}
    assert values == {
        "ENVIRONMENT": "production",
        "QW_DATA_DIR": "/tmp/quotewatch",
        "QW_WAREHOUSE": "gs://BUCKET/warehouse",
        "GRAFANA_PUSH_URL": "https://GRAFANA_PROMETHEUS_HOST/api/prom/push",
        # The frame log is off: Cloud Run's disk is memory and dies with the instance.
        "QW_WAL_MAX_BYTES": "0",
    }
    assert values["QW_WAREHOUSE"].startswith("gs://")
    job_env = _env(_job_container(job))
    for name in ("ENVIRONMENT", "QW_DATA_DIR", "QW_WAREHOUSE"):
        assert job_env[name] == env[name], name


def test_cloud_run_sets_port_and_k_service_itself(
    service: dict[str, Any], job: dict[str, Any]
) -> None:
    for container in (_service_container(service), _job_container(job)):
        assert not {"PORT", "K_SERVICE", "QW_PORT", "QW_HOST"} & set(_env(container))


def _names_read_by_quotewatch() -> tuple[set[str], str]:
    source = "\n".join(
        path.read_text() for tree in SOURCE_TREES for path in sorted(tree.rglob("*.py"))
    )
    return set(Settings.environment_variables()), source


def test_every_environment_variable_set_is_one_quotewatch_reads(
    service: dict[str, Any], job: dict[str, Any]
) -> None:
    settings_names, source = _names_read_by_quotewatch()
    assert {"QW_CATALOG_URI", "QW_WAREHOUSE", "QW_DATA_DIR", "GRAFANA_API_KEY"} <= settings_names
    set_names = set(_env(_service_container(service))) | set(_env(_job_container(job)))
    assert len(set_names) == 8
    unknown = {
        name
        for name in set_names
        if name not in settings_names and not re.search(rf"[\"']{name}[\"']", source)
    }
    assert unknown == set()


def test_the_service_command_line_parses_with_quotewatch(service: dict[str, Any]) -> None:
    args = build_parser().parse_args(_service_container(service)["args"])
    assert args.command == "run"
    settings = Settings.resolve(args, environ={"K_SERVICE": "quotewatch-btc", "PORT": "8080"})
    assert settings.products == ("BTC-USD", "ETH-USD")
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)


# --- maintenance-job.yaml -------------------------------------------------------------------


def _job_command_lines(job: dict[str, Any]) -> list[list[str]]:
    """The quotewatch command lines of the job's `sh -c` script, without `quotewatch`."""
    container = _job_container(job)
    assert container["command"] == ["sh", "-c"]
    [script] = container["args"]
    lines = [shlex.split(part) for part in script.split("&&")]
    assert all(line[0] == "quotewatch" for line in lines), lines
    return [line[1:] for line in lines]


def test_job_is_a_cloud_run_job_with_cloud_sql(job: dict[str, Any]) -> None:
    assert job["apiVersion"] == "run.googleapis.com/v1"
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == "quotewatch-maintenance"
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/cloudsql-instances"] == CLOUDSQL
    task = _job_task_spec(job)
    assert task["serviceAccountName"] == "quotewatch-job@PROJECT_ID.iam.gserviceaccount.com"
    assert task["timeoutSeconds"] == 3600
    assert "terminationGracePeriodSeconds" not in _keys(job)


def test_job_expires_snapshots_then_compacts_yesterday(job: dict[str, Any]) -> None:
    lines = _job_command_lines(job)
    assert lines == [["storage", "expire", "--older-than", "7d"], ["storage", "compact"]]
    expire, compact = (build_parser().parse_args(line) for line in lines)
    assert (expire.action, expire.older_than) == ("expire", dt.timedelta(days=7))
    assert (compact.action, compact.day) == ("compact", None)  # None: yesterday, UTC


# --- scheduler.sh ---------------------------------------------------------------------------

SCHEDULER_URI = (
    "https://{region}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/{project}"
    "/jobs/quotewatch-maintenance:run"
)


def _run_scheduler(tmp_path: Path, describe_status: int) -> list[list[str]]:
    """Run scheduler.sh against a fake gcloud that records each call, one arg per line."""
    log = tmp_path / "calls"
    fake = tmp_path / "bin" / "gcloud"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'{{ for a in "$@"; do printf "%s\\n" "$a"; done; echo ---; }} >> "{log}"\n'
        f'[ "$3" = describe ] && exit {describe_status}\n'
        "exit 0\n"
    )
    fake.chmod(0o755)
    environ = {
        "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
        "PROJECT_ID": "example-project",
        "REGION": "example-region1",
    }
    subprocess.run(["bash", str(SCHEDULER)], env=environ, check=True, timeout=30)
    calls = log.read_text().split("---\n")
    return [c.splitlines() for c in calls if c]


def _flags(call: list[str]) -> dict[str, str]:
    return {call[i]: call[i + 1] for i in range(len(call) - 1) if call[i].startswith("--")}


@pytest.mark.parametrize(("describe_status", "action"), [(1, "create"), (0, "update")])
def test_scheduler_runs_the_job_nightly_through_the_jobs_api(
    tmp_path: Path, describe_status: int, action: str
) -> None:
    describe, write = _run_scheduler(tmp_path, describe_status)
    assert describe[:4] == ["scheduler", "jobs", "describe", "quotewatch-maintenance-nightly"]
    assert write[:5] == ["scheduler", "jobs", action, "http", "quotewatch-maintenance-nightly"]
    assert _flags(write) == {
        "--project": "example-project",
        "--location": "example-region1",
        "--schedule": "15 3 * * *",
        "--time-zone": "Etc/UTC",
        "--http-method": "POST",
        "--uri": SCHEDULER_URI.format(region="example-region1", project="example-project"),
        "--oauth-service-account-email": (
            "quotewatch-scheduler@example-project.iam.gserviceaccount.com"
        ),
        "--oauth-token-scope": "https://www.googleapis.com/auth/cloud-platform",
    }


def test_scheduler_targets_the_job_the_yaml_defines(job: dict[str, Any]) -> None:
    assert f"/jobs/{job['metadata']['name']}:run" in SCHEDULER_URI
    runbook = RUNBOOK.read_text()
    assert SCHEDULER_URI.format(region="${REGION}", project="${PROJECT_ID}") in runbook
    assert '--schedule "15 3 * * *" --time-zone "Etc/UTC"' in runbook


# --- Dockerfile -----------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def test_dockerfile_builds_in_one_slim_stage_and_runs_in_another() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    froms = [args for word, args in instructions if word == "FROM"]
    assert len(froms) == 2
    for image in froms:
        match = re.fullmatch(r"python:3\.(\d+)-slim(?: AS \w+)?", image, flags=re.IGNORECASE)
        assert match, image
        assert int(match.group(1)) >= 11
    assert froms[0].lower().endswith(" as builder")
    stage_start = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    builder, runtime = instructions[:stage_start], instructions[stage_start:]
    builder_runs = " ".join(args for word, args in builder if word == "RUN")
    assert "gcc" in builder_runs
    assert "libc6-dev" in builder_runs
    assert "pip install --no-cache-dir uv" in builder_runs
    assert "scripts/build-release /dist" in builder_runs
    assert ("COPY", "--from=builder /dist /dist") in runtime
    runtime_runs = " ".join(args for word, args in runtime if word == "RUN")
    assert "pip install --no-cache-dir --no-deps -r /dist/requirements.txt" in runtime_runs
    assert "pip install --no-cache-dir --no-deps /dist/*.whl" in runtime_runs
    assert "uv" not in runtime_runs.split()


def test_dockerfile_runs_quotewatch_as_a_non_root_user() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    words = [word for word, _ in instructions]
    users = [args for word, args in instructions if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert "10001" in " ".join(args for word, args in instructions if word == "RUN")
    # The installs run before USER (as root), the app after it (as the user).
    last_run = max(i for i, word in enumerate(words) if word == "RUN")
    assert words.index("USER") > last_run
    values = dict(instructions)  # the last of each: the runtime stage's
    assert values["WORKDIR"] == "/home/quotewatch"
    assert values["ENV"] == "PYTHONUNBUFFERED=1"
    assert json.loads(values["ENTRYPOINT"]) == ["quotewatch"]
    assert json.loads(values["CMD"]) == ["run"]


def test_dockerignore_keeps_local_state_out_and_the_sources_in() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    expected = {".git", "**/.venv", "dist", "**/.quotewatch", "**/__pycache__", "**/*.so"}
    assert expected <= patterns
    assert {".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"} <= patterns
    assert {"artifacts", "benchmarks/results"} <= patterns
    needed = {"packages", "scripts", "uv.lock", "pyproject.toml", "README.md", "*"}
    assert not patterns & needed
    assert not any(p.startswith("!") for p in patterns)


# --- README.md (the runbook) ----------------------------------------------------------------

# Where a project id (or region, bucket) goes; each must hold a placeholder.
_PROJECT_SLOTS = (
    r"projects/([^/\s\"'`]+)",
    r"namespaces/([^/\s\"'`]+)",
    r"@([^.\s\"'`@]+)\.iam\.gserviceaccount\.com",
    r"docker\.pkg\.dev/([^/\s\"'`]+)",
    r"/cloudsql/([^:\s\"'`]+):",
    r"--project[= ]\"?([^\s\"'`]+)",
    r"set project \"?([^\s\"'`]+)",
    r"gcloud projects add-iam-policy-binding \"?([^\s\"'`]+)",
)
_PROJECT_PLACEHOLDER = re.compile(r"PROJECT_ID|\$PROJECT_ID|\$\{PROJECT_ID\}")
_REAL_REGION = re.compile(
    r"\b(?:us|europe|asia|australia|northamerica|southamerica|me|africa)-[a-z]+\d\b"
)


@pytest.mark.parametrize("path", [RUNBOOK, SERVICE, JOB, SCHEDULER], ids=lambda p: p.name)
def test_only_placeholders_where_project_ids_go(path: Path) -> None:
    text = path.read_text()
    found = [m.group(1) for slot in _PROJECT_SLOTS for m in re.finditer(slot, text)]
    assert found, f"no project id slot found in {path.name}"
    assert [v for v in found if not _PROJECT_PLACEHOLDER.fullmatch(v)] == []
    assert _REAL_REGION.findall(text) == []
    assert re.findall(r"\b\d{10,13}\b", text) == []  # project numbers
    buckets = re.findall(r"gs://([^/\s\"'`]+)", text)
    assert buckets or path == SCHEDULER  # the scheduler names no bucket
    assert set(buckets) <= {"BUCKET", "${BUCKET}"}


def test_runbook_variables_are_all_placeholders() -> None:
    text = RUNBOOK.read_text()
    for name in PLACEHOLDERS:
        assert f'export {name}="{name}"' in text


def test_runbook_covers_every_step() -> None:
    text = RUNBOOK.read_text()
    for api in ("run", "artifactregistry", "cloudbuild", "sqladmin", "secretmanager"):
        assert f"{api}.googleapis.com" in text
    assert "cloudscheduler.googleapis.com" in text
    for role in (
        "roles/cloudsql.client",
        "roles/storage.objectAdmin",
        "roles/secretmanager.secretAccessor",
        "roles/run.invoker",
    ):
        assert role in text
    for secret in SECRET_ENV.values():
        assert f"gcloud secrets create {secret}" in text
    assert "gcloud secrets versions add" in text
    for account in ("quotewatch-run", "quotewatch-job", "quotewatch-scheduler"):
        assert f"gcloud iam service-accounts create {account}" in text
    commands = (
        "gcloud artifacts repositories create quotewatch",
        'gcloud builds submit --region="$REGION" --tag "$IMAGE" .',
        'gcloud run services replace "${OUT}/service.yaml" --region "$REGION"',
        'gcloud run jobs replace "${OUT}/maintenance-job.yaml" --region "$REGION"',
        "deploy/cloudrun/scheduler.sh",
        "gcloud run services describe quotewatch-btc",
        "gcloud auth print-identity-token",
        "gcloud logging read",
        "uv run quotewatch dashboards push",
        "uv run quotewatch dashboards build",
    )
    for command in commands:
        assert command in text, command


def test_runbook_dashboard_commands_parse_with_quotewatch() -> None:
    text = RUNBOOK.read_text()
    lines = re.findall(r"^uv run quotewatch (dashboards .+)$", text, flags=re.MULTILINE)
    assert len(lines) == 1
    args = build_parser().parse_args(shlex.split(lines[0]))
    assert (args.command, args.action, args.folder) == ("dashboards", "push", "quotewatch")
    assert args.grafana_url == "https://GRAFANA_STACK.grafana.net"


def _sed_block() -> str:
    blocks: list[str] = re.findall(r"```bash\n(.*?)```", RUNBOOK.read_text(), flags=re.DOTALL)
    [block] = [b for b in blocks if "sed -e" in b and "maintenance-job.yaml" in b]
    return block


@pytest.mark.skipif(shutil.which("sed") is None, reason="needs sed")
def test_runbook_sed_fills_in_every_placeholder() -> None:
    values = {
        "PROJECT_ID": "example-project",
        "REGION": "example-region1",
        "INSTANCE": "example-sql",
        "BUCKET": "example-bucket",
        "TAG": "abc1234",
        "GRAFANA_PROMETHEUS_HOST": "prometheus.example.net",
    }
    script = _sed_block() + 'printf "%s" "$OUT"\n'
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **values},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    out = Path(result.stdout)
    try:
        rendered_service = _load(out / "service.yaml")
        rendered_job = _load(out / "maintenance-job.yaml")
        for path in (out / "service.yaml", out / "maintenance-job.yaml"):
            leftover = re.findall(rf"\b(?:{'|'.join(PLACEHOLDERS)})\b", path.read_text())
            assert leftover == [], path.name
    finally:
        shutil.rmtree(out)
    image = "example-region1-docker.pkg.dev/example-project/quotewatch/quotewatch:abc1234"
    assert _service_container(rendered_service)["image"] == image
    assert _job_container(rendered_job)["image"] == image
    annotations = rendered_service["spec"]["template"]["metadata"]["annotations"]
    assert annotations["run.googleapis.com/cloudsql-instances"] == (
        "example-project:example-region1:example-sql"
    )
    env = _env(_service_container(rendered_service))
    assert env["QW_WAREHOUSE"]["value"] == "gs://example-bucket/warehouse"
    assert env["GRAFANA_PUSH_URL"]["value"] == "https://prometheus.example.net/api/prom/push"
    # The substitution touched values only: names and secrets are as in the repository.
    assert set(env) == set(_env(_service_container(_load(SERVICE))))
    assert env["GRAFANA_API_KEY"] == _env(_service_container(_load(SERVICE)))["GRAFANA_API_KEY"]
    assert rendered_service["metadata"]["name"] == "quotewatch-btc"


def test_every_runbook_shell_block_and_the_script_are_valid_bash() -> None:
    blocks: list[str] = re.findall(r"```bash\n(.*?)```", RUNBOOK.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 15
    for text in [*blocks, SCHEDULER.read_text()]:
        result = subprocess.run(
            ["bash", "-n"], input=text, capture_output=True, text=True, check=False, timeout=30
        )
        assert result.returncode == 0, f"{result.stderr}\n{text}"
