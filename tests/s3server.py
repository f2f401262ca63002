"""A real S3-speaking server on loopback for the tests: moto's server mode in a process of its
own, with one bucket. (moto stands in for S3: its wire protocol, not a mock object.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.harness import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "callhistory-test",
    "AWS_SECRET_ACCESS_KEY": "callhistory-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> S3Server:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.endpoint + "/moto-api/")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("the S3 server did not start") from None
                time.sleep(0.1)
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def bucket(self, name: str) -> str:
        """Create a bucket; its URL for CALLHISTORY_RECORDINGS_URL."""
        httpx.put(f"{self.endpoint}/{name}").raise_for_status()
        return f"s3://{name}/recordings?endpoint={self.endpoint}&region=us-east-1"

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket, read from S3's own listing (ListObjectsV2)."""
        import boto3  # type: ignore[import-untyped]

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        listed = client.list_objects_v2(Bucket=bucket)
        return [item["Key"] for item in listed.get("Contents", [])]


def use_credentials() -> None:
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
