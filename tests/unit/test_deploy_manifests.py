"""The Kubernetes manifests (deploy/kustomize), rendered as `kubectl kustomize` renders them,
checked for what a real cluster needs: every setting the containers set is one tass reads, the
service URLs are given, each container runs a `tass` command with options it has, ports line
up from Service to container to command line to probe, the KEDA and Prometheus-operator
objects point at what exists, and docker-compose.yml runs the same commands with the same
environment. (Schemas and the policy scan: scripts/check-chart.sh.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tomllib
import typer
import yaml

from tass.client.cli import app
from tass.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "deploy" / "kustomize"
RENDERS = ["base", "overlays/cpu-trial", "overlays/gpu-spot", "overlays/external-managed"]
SERVICE_URLS = {"TASS_DATABASE_URL", "TASS_BROKER_URL", "TASS_ARTIFACT_URL"}
SETTINGS_VARS = {f"TASS_{name.upper()}" for name in Settings.model_fields}

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")


def render(path: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZE / path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=RENDERS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, its pod template) for Deployments and Jobs."""
    return [(o, o["spec"]["template"]) for o in objects if o["kind"] in ("Deployment", "Job")]


def tass_containers(objects: list[dict[str, Any]]) -> list[tuple[dict, dict, dict]]:
    """(workload, pod template, container) of every container running the tass image."""
    return [
        (workload, template, container)
        for workload, template in pod_specs(objects)
        for container in template["spec"]["containers"]
        if "example/tass" in container["image"]
    ]


def environment(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets from its envFrom sources that are rendered here, and its
    own env (valueFrom ones as '<from secret>')."""
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
        elif ("Secret", source["secretRef"]["name"]) in by_name:
            env.update(dict.fromkeys(by_name[("Secret", source["secretRef"]["name"])]["data"]))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "<from secret>")
    return env


def test_every_setting_set_is_one_tass_reads_and_the_service_urls_are_given(objects) -> None:
    for workload, _, container in tass_containers(objects):
        # (a generated Secret's name ends with its content hash)
        sources = [
            re.sub(r"-[a-z0-9]{10}$", "", next(iter(s.values()))["name"])
            for s in container["envFrom"]
        ]
        assert sources == ["tass-config", "tass-services"], workload["metadata"]["name"]
        env = environment(objects, container)
        unknown = {k for k in env if k.startswith("TASS_")} - SETTINGS_VARS
        assert not unknown, f"{workload['metadata']['name']}: tass reads no {unknown}"
        secrets = [o["metadata"]["name"] for o in of_kind(objects, "Secret")]
        if any(name.startswith("tass-services") for name in secrets):  # rendered (the trial)
            assert set(env) >= SERVICE_URLS, workload["metadata"]["name"]
    # every other setting has a default (the embedded ones are never right on a cluster,
    # which is why the three URLs are required above)
    required = {name for name, field in Settings.model_fields.items() if field.is_required()}
    assert not required


def test_the_external_overlay_documents_the_secret_it_expects() -> None:
    text = (KUSTOMIZE / "overlays" / "external-managed" / "kustomization.yaml").read_text()
    for name in SERVICE_URLS:
        assert f"#   {name}=" in text


def cli_options(command: str) -> set[str]:
    found = getattr(typer.main.get_command(app), "commands", {}).get(command)
    assert found is not None, f"`tass {command}` does not exist"
    return {opt for param in found.params for opt in param.opts}


def test_each_container_runs_a_tass_command_with_options_it_has(objects) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["tass"]' in dockerfile
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "tass" in scripts
    for workload, _, container in tass_containers(objects):
        assert "command" not in container, "the image's entry point (tass) must stay"
        command, *rest = container["args"]
        options = {arg for arg in rest if arg.startswith("--")}
        assert options <= cli_options(command), (workload["metadata"]["name"], options)


def arg_value(args: list[str], option: str) -> str | None:
    return args[args.index(option) + 1] if option in args else None


def test_ports_line_up_from_service_to_container_to_command_to_probe(objects) -> None:
    templates = pod_specs(objects)
    for service in of_kind(objects, "Service"):
        selector = service["spec"]["selector"]
        pods = [t for _, t in templates if selector.items() <= t["metadata"]["labels"].items()]
        assert pods, f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            for pod in pods:
                named = {
                    p["name"]: p["containerPort"]
                    for c in pod["spec"]["containers"]
                    for p in c.get("ports", [])
                }
                assert port["targetPort"] in named, service["metadata"]["name"]
    for workload, template, container in tass_containers(objects):
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        listen = arg_value(container["args"], "--port")
        if ports:
            assert listen is not None and set(ports.values()) == {int(listen)}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ports
        scrape = template["metadata"].get("annotations", {}).get("prometheus.io/port")
        if scrape is not None:
            assert int(scrape) == int(listen or 0), workload["metadata"]["name"]
    for config in of_kind(objects, "ConfigMap"):
        serve = urlsplit(config["data"]["TASS_SERVE_URL"])
        (service,) = [
            s for s in of_kind(objects, "Service") if s["metadata"]["name"] == serve.hostname
        ]
        assert serve.port in {p["port"] for p in service["spec"]["ports"]}


def test_pods_run_as_non_root_with_a_read_only_root_and_workers_have_a_grace(objects) -> None:
    for workload, template, container in tass_containers(objects):
        name = workload["metadata"]["name"]
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/lib/tass"} <= mounts, name  # where tass and TensorFlow write
        if container["args"][0] == "worker":
            # one batch, the preemption checkpoint and its upload (docs/benchmarks.md)
            assert template["spec"]["terminationGracePeriodSeconds"] >= 30, name
            gpus = container["resources"]["limits"].get("nvidia.com/gpu")
            assert gpus is None or gpus == container["resources"]["requests"]["nvidia.com/gpu"]


def test_the_gpu_overlay_has_two_pools_a_spot_pool_and_custom_resources_that_fit() -> None:
    objects = render("overlays/gpu-spot")
    workers = {
        w["metadata"]["name"]: c for w, _, c in tass_containers(objects) if c["args"] == ["worker"]
    }
    gpu_pools = {n for n, c in workers.items() if "nvidia.com/gpu" in c["resources"]["limits"]}
    assert gpu_pools == {"tass-worker-a100", "tass-worker-spot"}
    assert {"name": "TASS_SPOT_NOTICE", "value": "aws"} in workers["tass-worker-spot"]["env"]
    deployments = {d["metadata"]["name"] for d in of_kind(objects, "Deployment")}
    (scaled,) = of_kind(objects, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] in deployments
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    metric = re.match(r"max\((\w+)\{", query)
    assert metric is not None
    assert f'"{metric.group(1)}"' in (REPO / "api" / "prometheus.py").read_text()
    (monitor,) = of_kind(objects, "ServiceMonitor")
    (api,) = [s for s in of_kind(objects, "Service") if s["metadata"]["name"] == "tass-api"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= api["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in api["spec"]["ports"]}


def test_docker_compose_and_the_manifests_agree_on_commands_and_environment() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    objects = render("overlays/cpu-trial")
    base = {w["metadata"]["name"]: c for w, _, c in tass_containers(render("base"))}
    pairs = {
        "migrate": "tass-migrate",
        "api": "tass-api",
        "serving": "tass-serving",
        "worker": "tass-worker-cpu",
    }
    for compose_name, workload in pairs.items():
        assert services[compose_name]["command"] == base[workload]["args"], compose_name
    compose_env = compose["x-tass-env"]
    (_, _, api) = next(
        t for t in tass_containers(objects) if t[0]["metadata"]["name"] == "tass-api"
    )
    env = environment(objects, api)
    assert set(compose_env) <= set(env), set(compose_env) - set(env)
    assert env["TASS_DATA_ROOTS"] == compose_env["TASS_DATA_ROOTS"]
    assert urlsplit(env["TASS_SERVE_URL"]).port == urlsplit(compose_env["TASS_SERVE_URL"]).port
    for name in ("TASS_DATABASE_URL", "TASS_BROKER_URL", "TASS_ARTIFACT_URL"):
        assert urlsplit(compose_env[name]).scheme.split("+")[0] in {"postgresql", "redis", "s3"}
