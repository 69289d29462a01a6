"""The write-once store on S3 (a moto server): a second PUT to a key is refused by the server's
conditional write (If-None-Match), and listing and deleting work below the configured prefix,
as the garbage collector needs."""

from __future__ import annotations

import pytest

from tass.core.objectstore import ObjectExistsError, ObjectStore

pytestmark = pytest.mark.integration


def test_s3_keys_are_write_once_and_listed_below_the_prefix(s3_env, monkeypatch):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    store = ObjectStore("s3://tass/write-once-test")
    key = "jobs/0123/attempt-1/checkpoints/epoch-0001/model.keras"
    first = store.put_bytes(key, b"attempt one's bytes")
    with pytest.raises(ObjectExistsError, match="never overwritten"):
        store.put_bytes(key, b"a stale writer's bytes")
    assert b"".join(store.iter_range(key)) == b"attempt one's bytes"
    assert [(o.key, o.size) for o in store.list("jobs/")] == [(key, first.size)]
    store.delete(key)
    store.delete(key)  # already gone: not an error
    assert not store.exists(key)
    assert store.put_bytes(key, b"a new object after deletion").size == 27
