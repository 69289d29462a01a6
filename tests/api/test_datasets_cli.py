"""`tass datasets upload|list|show|delete` against the real API app (in process)."""

from __future__ import annotations

import hashlib

from tass.core.datasets import record_validation
from tests.support.archives import class_files, tar_gz, write


def test_upload_list_show_delete(tass_cli, tmp_path, db):
    archive = write(tmp_path / "pets.tar.gz", tar_gz(class_files()))
    uploaded = tass_cli("datasets", "upload", str(archive), "--name", "pets")
    assert uploaded.exit_code == 0, uploaded.output
    dataset_id = uploaded.stdout.split()[1]
    assert "validating" in uploaded.stdout
    assert hashlib.sha256(archive.read_bytes()).hexdigest() in uploaded.stdout
    with db() as session:
        summary = {
            "num_examples": 12,
            "classes": ["cat", "dog"],
            "class_counts": {"train": {"cat": 6, "dog": 6}},
            "image_sizes": {"32x32": 12},
        }
        record_validation(session, dataset_id, summary, None)
        session.commit()
    listed = tass_cli("datasets", "list")
    assert listed.exit_code == 0 and dataset_id in listed.stdout and "ready" in listed.stdout
    shown = tass_cli("datasets", "show", dataset_id)
    assert shown.exit_code == 0 and "train: cat 6, dog 6" in shown.stdout
    assert tass_cli("datasets", "delete", dataset_id).exit_code == 0
    missing = tass_cli("datasets", "show", dataset_id)
    assert missing.exit_code == 1 and dataset_id in missing.output


def test_upload_refusals_are_readable(tass_cli, tmp_path, settings):
    wrong = write(tmp_path / "pets.rar", b"data")
    refused = tass_cli("datasets", "upload", str(wrong))
    assert refused.exit_code == 2 and ".tar.gz" in refused.output
    settings.max_dataset_bytes = 1024
    big = write(tmp_path / "big.zip", b"z" * 4096)
    too_big = tass_cli("datasets", "upload", str(big))
    assert too_big.exit_code == 1 and "TASS_MAX_DATASET_BYTES" in too_big.output
