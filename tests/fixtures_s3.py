"""S3 test servers: one moto server per session, a fresh bucket per test.

A second moto, started only when a test asks for it, enforces IAM credentials
(``INITIAL_NO_AUTH_ACTION_COUNT``): the fixture spends the first free actions on
creating a user with an access key, and every request after those is checked.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest
from botocore.config import Config as BotoConfig

from tests.support import RepoSpec

MiB = 1024 * 1024

#: The IAM calls the enforcing server lets through before it starts checking.
_FREE_ACTIONS = 3


@dataclass(frozen=True)
class MotoServer:
    """A running moto server and the keys that reach it."""

    endpoint: str
    access_key_id: str = "testing"
    secret_access_key: str = "testing"

    def client(self, service: str = "s3") -> Any:
        """A plain botocore client for setting up and inspecting state."""
        return botocore.session.get_session().create_client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=BotoConfig(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def settings(self) -> dict[str, Any]:
        """Settings for a repository on this server (fast retries, 5 MiB parts)."""
        return {
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "retry_delay": 0.001,
            "retry_max_delay": 0.01,
            "part_size": 5 * MiB,
        }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Linux only: the server is stopped even when pytest dies without teardown (kill -9).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start_moto(extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra_env or {})
    for _ in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as resp:
                    if resp.status == 200:
                        return proc, endpoint
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        _stop(proc)
    raise RuntimeError("moto server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _empty_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for up in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def new_bucket_name() -> str:
    """A bucket name no other test uses."""
    return f"etc-test-{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session, on 127.0.0.1; it checks no credentials."""
    proc, endpoint = _start_moto()
    try:
        yield MotoServer(endpoint)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def moto_s3_client(moto_server: MotoServer) -> Iterator[Any]:
    """A sync botocore S3 client on the session's moto server, to set up and inspect."""
    client = moto_server.client()
    yield client
    client.close()


@pytest.fixture
def s3_bucket(moto_server: MotoServer, moto_s3_client: Any) -> Iterator[str]:
    """A fresh, empty bucket, deleted with its content after the test."""
    bucket = new_bucket_name()
    moto_s3_client.create_bucket(Bucket=bucket)
    yield bucket
    _empty_bucket(moto_s3_client, bucket)


@pytest.fixture
def s3_repo(moto_server: MotoServer, s3_bucket: str) -> RepoSpec:
    """A repository in a fresh bucket on the session's moto server."""
    return RepoSpec(url=f"s3://{s3_bucket}", settings=moto_server.settings())


@pytest.fixture(scope="session")
def moto_iam_server() -> Iterator[MotoServer]:
    """A second moto that checks credentials, with the keys of a user allowed ``s3:*``.

    Started lazily: only sessions with a test that asks for it pay for it. Anonymous
    requests fail on it with a 500 (moto looks for a missing Authorization header), so
    tests of public objects use :func:`moto_server`, which checks object ACLs of
    unsigned requests all the same.
    """
    proc, endpoint = _start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": str(_FREE_ACTIONS)})
    try:
        iam = MotoServer(endpoint).client("iam")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        # exactly _FREE_ACTIONS calls: everything after them is authenticated
        iam.create_user(UserName="etc-tester")
        iam.put_user_policy(
            UserName="etc-tester", PolicyName="s3-all", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName="etc-tester")["AccessKey"]
        iam.close()
        yield MotoServer(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        _stop(proc)


@pytest.fixture
def s3_iam_repo(moto_iam_server: MotoServer) -> Iterator[RepoSpec]:
    """A repository in a fresh bucket on the credential-checking moto server."""
    client = moto_iam_server.client()
    bucket = new_bucket_name()
    client.create_bucket(Bucket=bucket)
    yield RepoSpec(url=f"s3://{bucket}", settings=moto_iam_server.settings())
    _empty_bucket(client, bucket)
    client.close()
