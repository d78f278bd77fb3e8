"""The deployment files keep their promises: k8s/ manifests, the Dockerfile, the wheel, docs/deploy.md.

`.ci/run` checks the manifests against the Kubernetes schemas (kubernetes-validate), their
YAML style (yamllint) and the Dockerfile (hadolint); these tests check the policy, against the
application itself: the probes hit real routes, the ConfigMap parses with gmsd's own loader,
ports, users and shutdown timings agree across files.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from starlette.routing import Route
from starlette.testclient import TestClient

from gmsd import cli
from gmsd.config import ContextServicesOptions, CorsOptions, Limits, OrchestrationOptions, RedisOptions, parse_config
from tests.conftest import AppFactory
from tests.support.paths import ROOT

K8S = ROOT / "k8s"

Manifest = dict[str, Any]


def manifests() -> list[Manifest]:
    """Every resource of k8s/ (the kustomization itself is not a resource)."""
    found: list[Manifest] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def resource(kind: str, name: str) -> Manifest:
    matches = [m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def gmsd_container() -> dict[str, Any]:
    containers = pod_spec(resource("Deployment", "gmsd"))["containers"]
    assert [c["name"] for c in containers] == ["gmsd"]
    container: dict[str, Any] = containers[0]
    return container


def env_values(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    instructions = [(m.group(1).upper(), m.group(2).strip())
                    for m in re.finditer(r"^([A-Za-z]+)\s+(.*)$", text, re.M) if not m.group(0).startswith("#")]
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


DOCKERFILE = (ROOT / "Dockerfile").read_text()


def dockerfile_cmd() -> list[str]:
    cmd = [args for name, args in final_stage(DOCKERFILE) if name == "CMD"]
    assert len(cmd) == 1
    command: list[str] = json.loads(cmd[0])  # exec form: gmsd is PID 1 and gets SIGTERM itself
    return command


# --- k8s/ -----------------------------------------------------------------------------------

def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = sorted(kustomization["resources"])
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert listed == on_disk


def test_probes_use_get_routes_of_the_app_that_answer(make_client: AppFactory) -> None:
    container = gmsd_container()
    probes = {kind: container[kind]["httpGet"]["path"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    client: TestClient = make_client()
    routes = {r.path: r.methods for r in client.app.routes if isinstance(r, Route)}
    for path in probes.values():
        assert "GET" in (routes.get(path) or set()), path
        assert client.get(path).status_code == 200, path
    for kind in probes:
        assert container[kind]["httpGet"]["port"] == "http"


def test_one_container_port_everywhere() -> None:
    container = gmsd_container()
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    command = dockerfile_cmd()
    assert command[:2] == ["gmsd", "serve"]
    options = cli._parser().parse_args(command[1:])
    assert (options.host, options.port) == ("0.0.0.0", 8080)
    assert ("EXPOSE", "8080") in final_stage(DOCKERFILE)
    service = resource("Service", "gmsd")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    annotations = resource("Deployment", "gmsd")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}


def test_metrics_annotation_path_is_served(make_client: AppFactory) -> None:
    path = resource("Deployment", "gmsd")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
    response = make_client().get(path)
    assert response.status_code == 200
    assert "gmsd_http_requests_in_flight" in response.text


def test_configmap_holds_a_configuration_the_app_accepts_where_GMSD_CONFIG_points() -> None:
    configmap = resource("ConfigMap", "gmsd-config")
    config = parse_config(configmap["data"]["gmsd.toml"], "k8s/configmap.yaml")
    assert "request-interaction" in config.services
    container = gmsd_container()
    path = Path(env_values(container)["GMSD_CONFIG"])
    volumes = {v["name"]: v for v in pod_spec(resource("Deployment", "gmsd"))["volumes"]}
    mounts = [m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent)]
    assert len(mounts) == 1 and mounts[0]["readOnly"] is True
    assert volumes[mounts[0]["name"]]["configMap"]["name"] == "gmsd-config"
    assert path.name in configmap["data"]


def test_configmap_carries_the_cors_section_commented_out_and_valid_once_uncommented() -> None:
    text = resource("ConfigMap", "gmsd-config")["data"]["gmsd.toml"]
    assert not parse_config(text, "k8s/configmap.yaml").cors.enabled  # off as shipped
    lines = text.splitlines()
    start = lines.index("# [cors]")
    section = [line.removeprefix("# ") for line in lines[start:] if line.startswith("# ")]
    uncommented = parse_config("\n".join(section), "k8s/configmap.yaml (uncommented)")
    assert uncommented.cors.enabled and uncommented.cors.allowed_origins


def test_deploy_guide_lists_every_cors_key_with_its_default() -> None:
    assert "## Browsers (CORS)" in DEPLOY
    for field in msgspec.structs.fields(CorsOptions):
        rows = [line for line in DEPLOY.splitlines() if line.startswith(f"| `[cors]` | `{field.name}` |")]
        assert len(rows) == 1, field.name
        default = json.dumps(list(field.default)) if isinstance(field.default, tuple) else json.dumps(field.default)
        assert f"`{default}`" in rows[0], (field.name, default)


def test_redis_url_comes_from_the_secret_and_names_the_demo_redis() -> None:
    (variable,) = [e for e in gmsd_container()["env"] if e["name"] == "GMSD_REDIS_URL"]
    reference = variable["valueFrom"]["secretKeyRef"]
    secret = resource("Secret", reference["name"])
    url = secret["stringData"][reference["key"]]
    service = resource("Service", "gmsd-redis")
    assert url == f"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/0"


def test_authentication_is_on_with_credentials_from_the_secret(make_client: AppFactory) -> None:
    variables = {e["name"]: e for e in gmsd_container()["env"]}
    environ = {}
    for name, key in (("GMSD_AUTH_USERNAME", "username"), ("GMSD_AUTH_PASSWORD", "password")):
        reference = variables[name]["valueFrom"]["secretKeyRef"]
        assert reference["key"] == key
        environ[name] = resource("Secret", reference["name"])["stringData"][key]
    client = make_client(resource("ConfigMap", "gmsd-config")["data"]["gmsd.toml"], auth=environ)
    assert client.post("/genesys/1/service/storage").status_code == 401
    assert client.get("/genesys/1/cs/customers/c/services").status_code == 401
    token = base64.b64encode(f"{environ['GMSD_AUTH_USERNAME']}:{environ['GMSD_AUTH_PASSWORD']}".encode()).decode()
    assert client.post("/genesys/1/service/storage", headers={"authorization": f"Basic {token}"}).status_code == 200
    # the probes and the annotation-based Prometheus scrape need no credentials
    container = gmsd_container()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert client.get(container[probe]["httpGet"]["path"]).status_code == 200
    path = resource("Deployment", "gmsd")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
    assert client.get(path).status_code == 200


def test_environment_and_command_are_accepted_by_gmsd_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = env_values(gmsd_container())
    known = {cli.WORKERS, cli.SHUTDOWN_TIMEOUT, cli.LOG_LEVEL, "GMSD_SHUTDOWN_DELAY", "GMSD_CONFIG", "GMSD_REDIS_URL"}
    assert set(environment) <= known
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    options = cli._parser().parse_args(dockerfile_cmd()[1:])
    assert options.workers == 1
    assert options.log_level == "info"
    assert options.config == "/etc/gmsd/gmsd.toml"


def test_containers_run_unprivileged_on_a_read_only_root() -> None:
    uid = int(dict(final_stage(DOCKERFILE))["USER"].split(":")[0])
    assert uid != 0
    for workload in (resource("Deployment", "gmsd"), resource("StatefulSet", "gmsd-redis")):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]
    assert pod_spec(resource("Deployment", "gmsd"))["securityContext"]["runAsUser"] == uid
    # The one writable place, where several workers keep their metrics files.
    tmp = [m for m in gmsd_container()["volumeMounts"] if m["mountPath"] == "/tmp"]
    volumes = {v["name"]: v for v in pod_spec(resource("Deployment", "gmsd"))["volumes"]}
    assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]]


def test_exports_to_files_go_to_a_volume_mounted_at_the_configured_directory() -> None:
    config = parse_config(resource("ConfigMap", "gmsd-config")["data"]["gmsd.toml"], "k8s/configmap.yaml")
    mounts = [m for m in gmsd_container()["volumeMounts"] if m["mountPath"] == config.context_services.export_dir]
    volumes = {v["name"]: v for v in pod_spec(resource("Deployment", "gmsd"))["volumes"]}
    assert len(mounts) == 1 and "readOnly" not in mounts[0]
    assert "emptyDir" in volumes[mounts[0]["name"]] or "persistentVolumeClaim" in volumes[mounts[0]["name"]]


def test_replicas_disruption_budget_and_autoscaler_agree() -> None:
    deployment = resource("Deployment", "gmsd")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    replicas = deployment["spec"]["replicas"]
    assert replicas == 2
    pdb = resource("PodDisruptionBudget", "gmsd")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert 1 <= pdb["spec"]["minAvailable"] < replicas  # a drain can always evict one pod
    hpa = resource("HorizontalPodAutoscaler", "gmsd")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gmsd"}
    assert hpa["spec"]["minReplicas"] >= replicas
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert resource("Service", "gmsd")["spec"]["selector"] == selector
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


def test_grace_period_covers_pause_delay_and_shutdown_timeout() -> None:
    container = gmsd_container()
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pause = float(command[1])
    environment = env_values(container)
    budget = pause + float(environment["GMSD_SHUTDOWN_DELAY"]) + float(environment["GMSD_SHUTDOWN_TIMEOUT"])
    grace = pod_spec(resource("Deployment", "gmsd"))["terminationGracePeriodSeconds"]
    assert budget + 5 <= grace, f"{budget} s of shutdown do not fit in {grace} s before SIGKILL"
    # Readiness notices a dead Redis quickly, within the probe's own timeout.
    readiness = container["readinessProbe"]
    assert readiness["timeoutSeconds"] > 1.0  # /readyz's PING timeout (gmsd.web.ops)


def test_demo_redis_keeps_its_data_with_aof() -> None:
    statefulset = resource("StatefulSet", "gmsd-redis")
    (container,) = pod_spec(statefulset)["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"  # never drop live services
    data_dir = args[args.index("--dir") + 1]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": data_dir} in container["volumeMounts"]
    assert statefulset["spec"]["serviceName"] == "gmsd-redis"
    assert "DEMO" in (K8S / "redis-demo.yaml").read_text().split("apiVersion")[0]


# --- Dockerfile and wheel -------------------------------------------------------------------

def test_dockerfile_is_multi_stage_slim_non_root_without_healthcheck() -> None:
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", DOCKERFILE, re.M | re.I)
    assert len(froms) >= 2
    assert all(re.fullmatch(r"python:3\.11-slim(-\w+)?", image) for image, _ in froms)
    stage = final_stage(DOCKERFILE)
    names = [name for name, _ in stage]
    assert "HEALTHCHECK" not in names
    assert any(name == "COPY" and args.startswith("--from=") for name, args in stage)
    # Nothing is built or downloaded in the final image: no pip, no compiler, no cache.
    assert not [args for name, args in stage if name == "RUN" and re.search(r"pip|apt|gcc|wheel", args)]
    assert names.index("USER") < names.index("CMD")


def test_wheel_ships_the_lua_scripts_and_the_gmsd_command(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path), "."],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("gmsd-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for script in sorted((ROOT / "lua").glob("*/*.lua")):
            assert archive.read(f"gmsd/lua/{script.parent.name}/{script.name}") == script.read_bytes()
        static = ROOT / "app" / "gmsd" / "console" / "static"
        shipped = sorted(p for p in static.rglob("*") if p.is_file())
        assert {"console/index.html", "console/console.js", "docs/swagger-ui-bundle.js"} <= {
            p.relative_to(static).as_posix() for p in shipped}
        for path in shipped:  # the console and /docs need nothing from outside the wheel
            assert archive.read(f"gmsd/console/static/{path.relative_to(static).as_posix()}") == path.read_bytes()
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "gmsd = gmsd.cli:main" in archive.read(entry_points).decode()


# --- docs/deploy.md -------------------------------------------------------------------------

DEPLOY = (ROOT / "docs" / "deploy.md").read_text() if (ROOT / "docs" / "deploy.md").exists() else ""


def test_deploy_guide_starts_from_zero_with_kustomize() -> None:
    assert "kubectl apply -k k8s/" in DEPLOY
    assert "docker build" in DEPLOY


def test_deploy_guide_lists_every_environment_variable() -> None:
    read_by_gmsd = set(re.findall(r'"(GMSD_[A-Z_]+)"', "".join(p.read_text() for p in (ROOT / "app").rglob("*.py"))))
    assert read_by_gmsd >= {"GMSD_REDIS_URL", "GMSD_CONFIG", "GMSD_WORKERS", "GMSD_LOG_LEVEL",
                            "GMSD_SHUTDOWN_TIMEOUT", "GMSD_SHUTDOWN_DELAY"}
    for name in [*sorted(read_by_gmsd), "PROMETHEUS_MULTIPROC_DIR"]:
        assert f"`{name}`" in DEPLOY, name


@pytest.mark.parametrize("section, struct", [
    ("limits", Limits), ("redis", RedisOptions), ("orchestration", OrchestrationOptions),
    ("context_services", ContextServicesOptions),
])
def test_deploy_guide_lists_every_toml_key_with_its_default(section: str, struct: type[msgspec.Struct]) -> None:
    assert f"`[{section}]`" in DEPLOY
    for field in msgspec.structs.fields(struct):
        rows = [line for line in DEPLOY.splitlines() if line.startswith("|") and f"`{field.name}`" in line]
        assert any(f"`{section}`" in row or f"`[{section}]`" in row for row in rows), (section, field.name)
        default = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
        assert any(f"`{default!r}`".replace("'", '"') in row for row in rows), (section, field.name)


def test_deploy_guide_lists_the_service_options() -> None:
    for option in ("`_type`", "`_service`", "`_ttl`", "`[services.<name>]`"):
        assert option in DEPLOY
