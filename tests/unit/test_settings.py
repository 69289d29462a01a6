"""Settings from the environment, and the invariants between them."""

from __future__ import annotations

from pathlib import Path

from tass.contract.spec import TrainSpec
from tass.core.queue import celery_config
from tass.core.settings import Settings


def test_embedded_defaults_need_no_server(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'tass.db'}"
    assert settings.resolved_broker_url.startswith("sqla+sqlite:///")
    assert settings.resolved_artifact_url == (tmp_path / "artifacts").resolve().as_uri()
    assert settings.resolved_rate_limit_storage_url == "memory://"


def test_lists_come_from_plain_environment_strings(monkeypatch, tmp_path):
    monkeypatch.setenv("TASS_DATA_ROOTS", f"{tmp_path}/a:{tmp_path}/b")
    monkeypatch.setenv("TASS_METRICS_ALLOW_NETWORKS", "10.0.0.0/8, 127.0.0.1/32")
    settings = Settings()
    assert settings.resolved_data_roots == [Path(tmp_path / "a"), Path(tmp_path / "b")]
    assert settings.metrics_allow_networks == ["10.0.0.0/8", "127.0.0.1/32"]


def test_redis_never_redelivers_a_job_that_may_still_be_running():
    longest_deadline = next(
        meta.le
        for meta in TrainSpec.model_fields["max_runtime_seconds"].metadata
        if hasattr(meta, "le")
    )
    config = celery_config(Settings(broker_url="redis://127.0.0.1:6379/0"))
    assert config["broker_transport_options"]["visibility_timeout"] > longest_deadline
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
