"""docker-compose.yml and the Dockerfile: the wiring users rely on (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tass import client

ROOT = Path(client.__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_start_in_order_on_healthy_dependencies():
    services = compose()["services"]

    assert {"postgres", "redis", "minio", "minio-init", "migrate", "api", "worker"} <= set(services)
    for name in ("postgres", "redis", "minio"):
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["minio-init"]["condition"] == "service_completed_successfully", name
    assert "mc mb --ignore-existing local/tass" in services["minio-init"]["command"][0]


def test_api_and_worker_commands_images_and_gpu():
    services = compose()["services"]
    api, worker = services["api"], services["worker"]

    assert api["command"][:3] == ["api", "--host", "0.0.0.0"]
    assert "8000:8000" in api["ports"]
    assert api["build"]["args"]["TASS_EXTRA"] == "cpu"
    assert worker["command"] == ["worker"]
    assert worker["build"]["args"]["TASS_EXTRA"] == "gpu"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}


def test_service_environment():
    services = compose()["services"]
    for name in ("migrate", "api", "worker", "worker-cpu"):
        env = services[name]["environment"]
        assert env["TASS_DATABASE_URL"] == "postgresql+psycopg://tass:tass@postgres:5432/tass"
        assert env["TASS_BROKER_URL"] == "redis://redis:6379/0"
        assert env["TASS_ARTIFACT_URL"] == "s3://tass/artifacts"
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
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
