"""docker-compose.yml and the Dockerfile: the wiring users rely on (no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tass import client

ROOT = Path(client.__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_start_in_order_on_healthy_dependencies():
    services = compose()["services"]

    assert {"postgres", "redis", "s3", "s3-init", "migrate", "api", "worker"} <= set(services)
    for name in ("postgres", "redis", "s3"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "worker-gpu"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["s3-init"]["condition"] == "service_completed_successfully", name
    bucket = services["s3-init"]["command"][0]
    assert "head-bucket --bucket tass" in bucket and "create-bucket --bucket tass" in bucket


def test_cpu_by_default_and_the_gpu_worker_only_under_its_profile():
    services = compose()["services"]
    default = {name: svc for name, svc in services.items() if "profiles" not in svc}
    api, worker, gpu = services["api"], services["worker"], services["worker-gpu"]

    assert api["command"][:3] == ["api", "--host", "0.0.0.0"]
    assert "8000:8000" in api["ports"]
    assert api["build"]["args"]["TASS_EXTRA"] == "cpu"
    # `docker compose up` starts (and builds) only CPU images and reserves no GPU
    assert worker["command"] == ["worker"]
    assert worker["image"] == "tass:cpu" and worker["build"]["args"]["TASS_EXTRA"] == "cpu"
    for name, svc in default.items():
        assert "deploy" not in svc, name
        assert svc.get("build", {}).get("args", {}).get("TASS_EXTRA", "cpu") == "cpu", name
        assert svc.get("image") != "tass:gpu", name
    # `--profile gpu` adds the GPU worker, whose image is built with the gpu extra
    assert gpu["profiles"] == ["gpu"]
    assert gpu["command"] == ["worker"]
    assert gpu["image"] == "tass:gpu" and gpu["build"]["args"]["TASS_EXTRA"] == "gpu"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}


def test_every_image_is_pinned_to_a_release():
    services = compose()["services"]
    pulled = {svc["image"] for svc in services.values() if "build" not in svc}

    assert pulled, "the data services pull images"
    for image in pulled:
        assert re.fullmatch(r"[a-z0-9./-]+:\d+(\.\d+)+", image), f"{image} is not pinned"
    assert not any("minio" in image for image in pulled)  # no unmaintained community images
    # the tass image's base is pinned too (python X.Y.Z on a named Debian release)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_VERSION=\d+\.\d+\.\d+$", dockerfile, re.M)
    assert "FROM python:${PYTHON_VERSION}-slim-bookworm" in dockerfile


def test_the_object_store_credentials_match_what_the_services_use():
    services = compose()["services"]
    identities = compose()["configs"]["s3-identities"]["content"]
    env = services["api"]["environment"]

    assert "-s3.config=/etc/seaweedfs/s3.json" in services["s3"]["command"]
    assert services["s3"]["configs"] == [
        {"source": "s3-identities", "target": "/etc/seaweedfs/s3.json"}
    ]
    assert f'"accessKey": "{env["AWS_ACCESS_KEY_ID"]}"' in identities
    assert f'"secretKey": "{env["AWS_SECRET_ACCESS_KEY"]}"' in identities
    assert services["s3-init"]["environment"]["AWS_ACCESS_KEY_ID"] == env["AWS_ACCESS_KEY_ID"]


def test_service_environment():
    services = compose()["services"]
    for name in ("migrate", "api", "worker", "worker-gpu"):
        env = services[name]["environment"]
        assert env["TASS_DATABASE_URL"] == "postgresql+psycopg://tass:tass@postgres:5432/tass"
        assert env["TASS_BROKER_URL"] == "redis://redis:6379/0"
        assert env["TASS_ARTIFACT_URL"] == "s3://tass/artifacts"
        assert env["AWS_ENDPOINT_URL"] == "http://s3:8333"
        assert env["AWS_REGION"] == "us-east-1"
        assert env["TASS_DATA_ROOTS"] == "/data"
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)


def test_dockerfile_installs_the_chosen_extra_and_runs_as_a_user():
    text = (ROOT / "Dockerfile").read_text()

    assert "ARG TASS_EXTRA=cpu" in text
    assert '"${TASS_EXTRA}"' in text
    assert "\nUSER tass\n" in text
    assert 'ENTRYPOINT ["tass"]' in text


def test_the_serving_process_runs_beside_the_api_and_the_api_finds_it():
    services = compose()["services"]
    serving = services["serving"]

    assert serving["command"] == ["serve", "--host", "0.0.0.0", "--port", "8100"]
    assert "ports" not in serving  # predictions go through the API, which checks the key
    assert serving["environment"]["TASS_ARTIFACT_URL"] == "s3://tass/artifacts"
    assert services["api"]["environment"]["TASS_SERVE_URL"] == "http://serving:8100"
    assert "COPY serving ./serving" in (ROOT / "Dockerfile").read_text()
