"""A loopback S3 server (moto) with one bucket, for the tests that store artifacts on S3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer


@contextmanager
def moto_s3(bucket: str, access_key: str = "tass-tests") -> Iterator[dict[str, str]]:
    """Run a moto S3 server on 127.0.0.1 with `bucket` created; yields the AWS_* variables a
    service (or boto3) needs to reach it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": f"{access_key}-secret",
            "AWS_REGION": "us-east-1",
        }
        boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=bucket)
        yield env
    finally:
        server.stop()
