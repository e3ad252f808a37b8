"""Credentials never leak: not in output, errors, ``-v`` tracebacks, progress, logs or reprs.

Every ``etc`` run here has a secret access key and a session token, from the
environment or from a TOML file, and meets a repository that is down, one that
refuses the credentials, or one that works; all it prints is searched for them.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import etcetera as etc
from etcetera.connect import backend_options
from tests.fixtures_s3 import MotoServer, free_port
from tests.support import RepoSpec, run_etc_together, write_tree

NAME = "sample"
SECRET = f"SeCrEtKeY{secrets.token_hex(12)}"
TOKEN = f"SeSsIoNtOkEn{secrets.token_hex(12)}"
GCS_KEY = f"PrIvAtEkEy{secrets.token_hex(12)}"
LEAKS = (SECRET, TOKEN, GCS_KEY, SECRET[9:], TOKEN[12:], GCS_KEY[10:])


def assert_clean(text: str, where: str = "") -> None:
    """No secret, nor its random part alone, appears in ``text``."""
    for leak in LEAKS:
        assert leak not in text, f"a secret leaked into {where}:\n{text}"


def _register(home: Path, tmp: Path) -> None:
    src = write_tree(tmp / f"src-{home.name}" / NAME, {"data/train/a.txt": b"a" * 5000})
    etc.register(src, config=etc.Config("file:///unused", home=home))


def _env(home: Path, url: str, endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETC_", "AWS_"))}
    env.update(
        {
            "ETC_CONFIG": str(home.parent / "no-such.toml"),
            "ETC_HOME": str(home),
            "ETC_URL": url,
            "ETC_ENDPOINT_URL": endpoint,
            "ETC_REGION": "us-east-1",
            "ETC_AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID",
            "ETC_AWS_SECRET_ACCESS_KEY": SECRET,
            "ETC_AWS_SESSION_TOKEN": TOKEN,
            "ETC_RETRIES": "1",
            "ETC_RETRY_DELAY": "0.001",
            "ETC_TIMEOUT": "5",
            **extra,
        }
    )
    return env


def run_all(jobs: list[tuple[list[str], dict[str, str]]]) -> list[subprocess.CompletedProcess[str]]:
    """Run ``etc`` commands side by side (each start costs a second of imports)."""
    return run_etc_together(jobs)


@pytest.mark.slow  # six `etc` processes
def test_cli_never_prints_secrets(
    tmp_path: Path, moto_server: MotoServer, moto_iam_server: MotoServer, s3_repo: RepoSpec
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    down = tmp_path / "down"
    _register(down, tmp_path)
    # The same secrets from a TOML file instead of the environment.
    toml = tmp_path / "etc.toml"
    toml.write_text(
        f'aws_access_key_id = "AKIAEXAMPLEKEYID"\naws_secret_access_key = "{SECRET}"\n'
        f'aws_session_token = "{TOKEN}"\n'
    )
    from_file = _env(down, "s3://bucket", dead)
    del from_file["ETC_AWS_SECRET_ACCESS_KEY"], from_file["ETC_AWS_SESSION_TOKEN"]
    # The credential-checking moto refuses them (the key id is real, the secret is not).
    refused_home = tmp_path / "refused"
    _register(refused_home, tmp_path)
    refused = _env(
        refused_home,
        "s3://bucket",
        moto_iam_server.endpoint,
        ETC_AWS_ACCESS_KEY_ID=moto_iam_server.access_key_id,
    )
    del refused["ETC_AWS_SESSION_TOKEN"]
    jobs = [
        (["-v", "push", NAME], _env(down, "s3://bucket", dead)),
        (["-v", "config", "--json"], _env(down, "s3://bucket", dead)),
        (["-v", "--config", str(toml), "push", NAME], from_file),
        (["-v", "push", NAME], refused),
    ]
    results = run_all(jobs)
    for (args, _), result in zip(jobs, results, strict=True):
        assert_clean(result.stdout + result.stderr, f"etc {' '.join(args)}")
        if "config" not in args:
            assert result.returncode != 0, (args, result.stdout, result.stderr)
            assert "etc: error:" in result.stderr, (args, result.stderr)
        else:
            assert result.returncode == 0, (args, result.stderr)
            assert "****" in result.stdout
    assert "credentials were refused" in results[3].stderr or "denied" in results[3].stderr

    # A working repository, with progress lines and summaries: still nothing.
    ok_home = tmp_path / "ok"
    _register(ok_home, tmp_path)
    ok = _env(ok_home, s3_repo.url, moto_server.endpoint)
    (pushed,) = run_all([(["-v", "push", NAME], ok)])
    (pulled,) = run_all(
        [(["-v", "pull", NAME], _env(tmp_path / "ok2", s3_repo.url, ok["ETC_ENDPOINT_URL"]))]
    )
    for result in (pushed, pulled):
        assert result.returncode == 0, result.stderr
        assert_clean(result.stdout + result.stderr, "a successful transfer")
    assert "upload" in pushed.stderr and "pushed sample version 1" in pushed.stdout


def test_reprs_and_dumps_hide_secrets() -> None:
    cfg = etc.Config(
        "s3://bucket", aws_secret_access_key=SECRET, aws_session_token=TOKEN, endpoint_url="x"
    )
    assert cfg.secret("aws_secret_access_key") == SECRET  # the back-end still gets it
    options = backend_options(cfg)
    assert options.aws_secret_access_key == SECRET
    for text in (
        repr(cfg),
        str(cfg),
        cfg.model_dump_json(),
        json.dumps(cfg.masked()),
        repr(options),
        str(options),
        repr(cfg.model_dump()),
    ):
        assert_clean(text, "a repr")


@pytest.mark.anyio
async def test_errors_and_logs_hide_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Errors (with their causes and tracebacks) and the log records of a failed transfer."""
    dead = f"http://127.0.0.1:{free_port()}"
    home = tmp_path / "home"
    _register(home, tmp_path)
    cfg = etc.Config(
        "s3://bucket",
        home=home,
        endpoint_url=dead,
        aws_access_key_id="AKIAEXAMPLEKEYID",
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
        retries=1,
        retry_delay=0.001,
    )
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    for call in (
        lambda: etc.apush(NAME, config=cfg),
        lambda: etc.apull(NAME, config=cfg.model_copy(update={"home": tmp_path / "h2"})),
        lambda: etc.als(config=cfg, remote=True),
    ):
        with pytest.raises(etc.TransientError) as info:
            await call()
        errors.append(info.value)
    for exc in errors:
        assert_clean(repr(exc), "an error's repr")
        assert_clean("".join(traceback.format_exception(exc)), "a traceback")
        cause = exc.__cause__
        while cause is not None:
            assert_clean(repr(cause), "a cause's repr")
            cause = cause.__cause__
    # Every record, botocore's own DEBUG ones (which carry the signed headers) too.
    assert any(r.name.startswith("botocore") for r in caplog.records)
    for record in caplog.records:
        assert_clean(record.getMessage(), f"a log record of {record.name}")
        assert_clean(record.exc_text or "", f"a logged traceback of {record.name}")


_LIBRARY = """
import logging, sys
logging.basicConfig(level=logging.DEBUG)
import etcetera as etc
home, url, endpoint, secret, token, dead = sys.argv[1:]
cfg = etc.Config(url, home=home, endpoint_url=endpoint, region="us-east-1",
                 aws_access_key_id="AKIAEXAMPLEKEYID", aws_secret_access_key=secret,
                 aws_session_token=token, retries=1, retry_delay=0.001)
etc.push("sample", config=cfg)
etc.pull("sample", config=cfg.model_copy(update={"home": home + "-2"}))
try:
    etc.ls(config=cfg.model_copy(update={"endpoint_url": dead}), remote=True)
except etc.TransientError as exc:
    logging.getLogger("app").exception("listing failed: %s", exc)
print("done")
"""


def test_a_library_logging_at_debug_prints_no_secret(
    tmp_path: Path, moto_server: MotoServer, s3_repo: RepoSpec
) -> None:
    """An application with ``logging.basicConfig(level=DEBUG)`` and a session token set."""
    home = tmp_path / "home"
    _register(home, tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"
    args = [str(home), s3_repo.url, moto_server.endpoint, SECRET, TOKEN, dead]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
    env["ETC_CONFIG"] = str(tmp_path / "no-such.toml")
    result = subprocess.run(
        [sys.executable, "-c", _LIBRARY, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "done" in result.stdout, result.stderr[-3000:]
    # botocore logged the signed requests (with their headers) and a failure's traceback.
    assert "DEBUG:botocore.endpoint:Sending http request" in result.stderr
    assert "X-Amz-Security-Token" in result.stderr and "Traceback" in result.stderr
    assert_clean(result.stdout + result.stderr, "a DEBUG log of a library process")


@pytest.mark.anyio
@pytest.mark.parametrize("broken", ["truncated", "no type"])
async def test_gcs_credentials_file_contents_never_leak(tmp_path: Path, broken: str) -> None:
    """A service-account file that cannot be used: the error names the file, not its key."""
    info = {
        "type": "service_account",
        "client_email": "x@example.iam.gserviceaccount.com",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCS_KEY}\n-----END PRIVATE KEY-----\n",
    }
    if broken == "no type":
        del info["type"]
    text = json.dumps(info)
    creds = tmp_path / "sa.json"
    creds.write_text(text[:-20] if broken == "truncated" else text)
    cfg = etc.Config(
        "gs://bucket",
        home=tmp_path / "home",
        # https: requests would be signed, so the file is read (nothing listens there)
        endpoint_url=f"https://127.0.0.1:{free_port()}",
        gcs_credentials_file=creds,
        retries=0,
    )
    with pytest.raises(etc.ConfigError, match=r"sa\.json") as caught:
        await etc.als(config=cfg, remote=True)
    shown = repr(caught.value) + "".join(traceback.format_exception(caught.value))
    assert_clean(shown, "a GCS credentials error")
    assert_clean(repr(backend_options(cfg)), "GCS options")
