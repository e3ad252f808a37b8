"""The manual: every example of the tutorial runs as shown, and the Sphinx build passes.

The tutorial (``docs/tutorial.rst``) is run top to bottom as one shell session against a
``file://`` repository in a temp folder:

- ``console`` blocks: each ``$ command`` runs in bash (``export`` and ``cd`` carry over to
  later blocks); the lines under it are its expected output, matched in order against what
  it printed (other lines may come between, ``...`` matches anything). A command is
  expected to succeed unless its expected output has an ``etc: error:`` line.
- ``python`` blocks run in a fresh interpreter in the session's folder and environment.
  A ``print(...)  # TEXT`` line expects ``TEXT`` as a line of output, in order.
- ``toml`` blocks captioned with a path under ``~/`` are written there.
- Any other block must be preceded by a ``.. not-run: REASON`` comment; those are still
  checked (TOML keys are settings; a CI ``run:`` line is a command the session ran).

The counts below are fixed so that removing an example fails this test.

``etc`` starts in about a second (it imports pydantic, anyio, the API), and the tutorial
runs it dozens of times. So the session's ``etc`` is a shell function that hands its
argv, environment, folder and stdin/stdout/stderr to a process that imported etcetera
once and forks a child per command, which runs ``etcetera.cli.main`` exactly as the
console script does (exit status included). Set ``TEST_DOCS_REAL_ETC=1`` to run the
installed ``etc`` instead.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import etcetera
import etcetera.api
from etcetera.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.rst"

EXPECTED_BLOCKS = {"console": 16, "python": 5, "toml": 1, "not-run": 2}
EXPECTED_COMMANDS = 45

_MARK = "@@etc-docs@@"


@dataclass
class Example:
    """One ``.. code-block::`` of a page."""

    language: str
    text: str
    line: int
    caption: str | None = None
    not_run: str | None = None

    def where(self) -> str:
        return f"{TUTORIAL.name}:{self.line}"


@dataclass
class Command:
    """A ``$ command`` of a console block and the output lines shown under it."""

    text: str
    expected: list[str] = field(default_factory=list)


def parse_examples(text: str) -> list[Example]:
    """Every code block of an rst page, with its caption and not-run reason."""
    lines = text.splitlines()
    examples = []
    for i, line in enumerate(lines):
        m = re.match(r"( *)\.\. code-block:: *(\S+) *$", line)
        if not m:
            continue
        inner = m[1] + " "
        j = i + 1
        caption = None
        while j < len(lines) and (opt := re.match(rf"{inner}+:([\w-]+):(.*)$", lines[j])):
            if opt[1] == "caption":
                caption = opt[2].strip()
            j += 1
        body = []
        while j < len(lines) and (not lines[j].strip() or lines[j].startswith(inner)):
            body.append(lines[j])
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = re.match(r" *\.\. not-run:(.*)$", lines[k]) if k >= 0 else None
        examples.append(
            Example(
                language=m[2],
                text=textwrap.dedent("\n".join(body)).strip("\n"),
                line=i + 1,
                caption=caption,
                not_run=marker[1].strip() if marker else None,
            )
        )
    return examples


def parse_console(text: str) -> list[Command]:
    """``$ command`` lines and the expected output under each."""
    commands: list[Command] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append(Command(line[2:].strip()))
        elif line.strip():
            assert commands, f"output before any command: {line!r}"
            commands[-1].expected.append(line.rstrip())
    return commands


def expected_prints(code: str) -> list[str]:
    """``TEXT`` of each ``print(...)  # TEXT`` line."""
    return [m[1].rstrip() for m in re.finditer(r"^\s*print\(.*\)\s+# (.*)$", code, re.M)]


def _pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split("...")))


def assert_shown(expected: list[str], output: str, what: str) -> None:
    """Each expected line matches a line of the output, in order (``...``: anything)."""
    actual = [line.rstrip() for line in output.splitlines()]
    at = 0
    for want in expected:
        if want.strip() == "...":
            continue
        pattern = _pattern(want)
        while at < len(actual) and not pattern.fullmatch(actual[at]):
            at += 1
        assert at < len(actual), f"{what}: expected {want!r} in order, got:\n{output}"
        at += 1


# The client side of the fork server: a bare interpreter (-S) that passes on its fds.
_CLIENT = """
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = json.dumps({"argv": sys.argv[2:], "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
socket.send_fds(s, [len(req).to_bytes(8, "big")], [0, 1, 2])
s.sendall(req)
answer = b""
while chunk := s.recv(64):
    answer += chunk
sys.exit(int(answer or b"70"))
"""


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client went away")
        data += chunk
    return data


def _run_forked(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: become the client's ``etc`` process, then exit."""
    from etcetera.cli import main

    code = 70
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        env = request["env"]
        argv = request["argv"]
        cwd = request["cwd"]
        assert isinstance(env, dict) and isinstance(argv, list) and isinstance(cwd, str)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["etc", *argv]
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve_etc(path: str) -> None:
    """The fork server: import etcetera once, then fork one ``etc`` per connection."""
    import importlib
    import pkgutil

    import etcetera.backends.file
    import etcetera.cli

    for module in pkgutil.iter_modules(etcetera.cli.__path__):
        importlib.import_module(f"etcetera.cli.{module.name}")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            head, fds, _, _ = socket.recv_fds(conn, 8, 3)
            request = json.loads(_recv_exactly(conn, int.from_bytes(head, "big")))
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                _run_forked(request, fds)
            for fd in fds:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            conn.sendall(str(os.waitstatus_to_exitcode(status)).encode())


@contextlib.contextmanager
def etc_server() -> Iterator[str | None]:
    """Bash lines that define ``etc`` as a client of a fork server (none: the real one)."""
    if os.environ.get("TEST_DOCS_REAL_ETC") or not hasattr(os, "fork"):
        yield None
        return
    folder = tempfile.mkdtemp(prefix="etc-docs-")  # short: a socket path has ~100 bytes
    sock = os.path.join(folder, "etc.sock")
    client = os.path.join(folder, "client.py")
    Path(client).write_text(_CLIENT)
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from tests.test_docs import serve_etc; serve_etc({sock!r})"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield f"etc() {{ '{sys.executable}' -S '{client}' '{sock}' \"$@\"; }}"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)


class Session:
    """A shell session of a reader following the tutorial in an empty folder."""

    def __init__(self, tmp_path: Path, etc_function: str | None) -> None:
        self.tmp = tmp_path
        self.etc_function = etc_function
        self.cwd = tmp_path / "work"
        self.cwd.mkdir()
        user = tmp_path / "user"
        user.mkdir()
        # Stands in for the tutorial's s3:// url until the tutorial sets its own, so
        # that no example can ever reach a real bucket.
        guard = tmp_path / "guard-repo"
        guard.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETC_")}
        env.update(
            HOME=str(user),
            ETC_HOME=str(tmp_path / "home"),
            ETC_URL=f"file://{guard}",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            LC_ALL="C.UTF-8",
        )
        self.env = env
        self.commands_run = 0

    def console(self, example: Example) -> None:
        commands = parse_console(example.text)
        assert commands, f"{example.where()}: a console block without a $ command"
        state = self.tmp / "session-state"
        script = ["exec 2>&1", self.etc_function or ""]
        for n, cmd in enumerate(commands):
            assert not cmd.text.endswith("\\"), f"{example.where()}: one line per command"
            script += [f"echo '{_MARK} {n}'", cmd.text, f"__rc=$?; echo; echo '{_MARK} rc' $__rc"]
        script += [f"env -0 > '{state}.env'", f"pwd > '{state}.cwd'"]
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", "\n".join(script)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{example.where()}: the shell failed:\n{done.stdout}"
        parts = re.split(rf"^{_MARK} (\S+(?: -?\d+)?)$", done.stdout, flags=re.M)[1:]
        outputs: list[str] = []
        codes: list[int] = []
        for tag, body in zip(parts[::2], parts[1::2], strict=True):
            if tag.startswith("rc "):
                codes.append(int(tag.split()[1]))
            else:
                outputs.append(body)
        assert len(outputs) == len(codes) == len(commands), f"lost output:\n{done.stdout}"
        for cmd, output, rc in zip(commands, outputs, codes, strict=True):
            what = f"{example.where()}: $ {cmd.text}"
            if any(line.startswith("etc: error:") for line in cmd.expected):
                assert rc != 0, f"{what}: expected to fail, exited 0:\n{output}"
            else:
                assert rc == 0, f"{what}: exited {rc}:\n{output}"
            assert_shown(cmd.expected, output, what)
            self.commands_run += 1
        raw = Path(f"{state}.env").read_bytes().decode()
        self.env = dict(item.partition("=")[::2] for item in raw.split("\0") if "=" in item)
        self.cwd = Path(Path(f"{state}.cwd").read_text().strip())

    def python(self, example: Example) -> None:
        done = subprocess.run(
            [sys.executable, "-c", example.text],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        what = f"{example.where()}: python"
        assert done.returncode == 0, f"{what} failed:\n{done.stdout}{done.stderr}"
        assert_shown(expected_prints(example.text), done.stdout, what)

    def write(self, example: Example) -> None:
        assert example.caption is not None and example.caption.startswith("~/"), example
        target = Path(self.env["HOME"]) / example.caption[2:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(example.text + "\n")


def _tutorial() -> list[Example]:
    return parse_examples(TUTORIAL.read_text(encoding="utf-8"))


def _commands(examples: list[Example]) -> list[str]:
    return [
        c.text
        for e in examples
        if e.language == "console" and e.not_run is None
        for c in parse_console(e.text)
    ]


def _check_not_run(example: Example, commands: list[str]) -> None:
    assert example.not_run, f"{example.where()}: a not-run example needs a reason"
    if example.language == "toml":
        keys = set(tomllib.loads(example.text))
        unknown = keys - set(etcetera.Config.model_fields)
        assert not unknown, f"{example.where()}: not settings: {unknown}"
    elif example.language == "yaml":
        runs = re.findall(r"^\s*run: (.+)$", example.text, re.M)
        assert runs, f"{example.where()}: a CI step without a run: line"
        for cmd in runs:
            assert cmd.strip() in commands, f"{example.where()}: {cmd!r} is never run"
        for var in re.findall(r"^\s*(ETC_\w+):", example.text, re.M):
            key = var.removeprefix("ETC_").lower()
            assert key in etcetera.Config.model_fields, f"{example.where()}: {var}"
    else:
        pytest.fail(f"{example.where()}: no check for not-run {example.language} examples")


def run_example(
    session: Session, example: Example, commands: list[str], ran: collections.Counter[str]
) -> None:
    """Run (or check) one example and count it by kind."""
    if example.not_run is not None:
        _check_not_run(example, commands)
        ran["not-run"] += 1
    elif example.language == "console":
        session.console(example)
        ran["console"] += 1
    elif example.language == "python":
        session.python(example)
        ran["python"] += 1
    elif example.language == "toml" and example.caption:
        session.write(example)
        ran["toml"] += 1
    else:
        pytest.fail(f"{example.where()}: {example.language} block is neither run nor marked")


def test_tutorial_examples_run(tmp_path: Path) -> None:
    examples = _tutorial()
    commands = _commands(examples)
    ran: collections.Counter[str] = collections.Counter()
    with etc_server() as etc_function:
        session = Session(tmp_path, etc_function)
        for example in examples:
            run_example(session, example, commands, ran)
    markers = TUTORIAL.read_text(encoding="utf-8").count(".. not-run:")
    assert markers == ran["not-run"], "a .. not-run: comment that precedes no code block"
    assert dict(ran) == EXPECTED_BLOCKS
    assert session.commands_run == EXPECTED_COMMANDS


def test_tutorial_uses_every_command() -> None:
    pages = [*_tutorial(), *parse_examples(READING.read_text(encoding="utf-8"))]
    used = {cmd.split()[1] for cmd in _commands(pages) if cmd.startswith("etc ")}
    commands = {name for name in app if not name.startswith("-") and name != "ls"}
    assert commands <= used, f"commands without a tutorial example: {commands - used}"


READING = DOCS / "reading.rst"


def test_reading_page_examples_run(tmp_path: Path) -> None:
    """docs/reading.rst runs as one session, etc:// found through the entry point."""
    examples = parse_examples(READING.read_text(encoding="utf-8"))
    ran: collections.Counter[str] = collections.Counter()
    with etc_server() as etc_function:
        session = Session(tmp_path, etc_function)
        # The fsspec.specs entry point as pyproject.toml declares it, whether or not this
        # source tree is installed.
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        site = tmp_path / "site" / "etcetera_docs_probe-0.dist-info"
        site.mkdir(parents=True)
        (site / "METADATA").write_text("Metadata-Version: 2.1\nName: etcetera-docs-probe\n")
        spec = project["entry-points"]["fsspec.specs"]["etc"]
        (site / "entry_points.txt").write_text(f"[fsspec.specs]\netc = {spec}\n")
        paths = [str(site.parent), str(ROOT), session.env.get("PYTHONPATH", "")]
        session.env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        for example in examples:
            run_example(session, example, _commands(examples), ran)
    assert dict(ran) == {"console": 4, "python": 6}


def test_index_examples_are_run_elsewhere() -> None:
    """What's new on the product page repeats tutorial steps; the seed's are in test_seed."""
    index = parse_examples((DOCS / "index.rst").read_text(encoding="utf-8"))
    tutorial = _tutorial()
    commands = set(_commands(tutorial))
    seed_test = (ROOT / "tests" / "test_seed.py").read_text(encoding="utf-8")
    python_lines = {
        line.strip() for e in tutorial if e.language == "python" for line in e.text.splitlines()
    }
    checked = 0
    for example in index:
        for line in example.text.splitlines():
            if example.language in ("console", "bash") and line.startswith("$ "):
                cmd = line[2:].strip()
                assert cmd in commands or f"# $ {cmd}" in seed_test, f"index.rst: {cmd!r}"
                checked += 1
            elif example.language == "python" and line.strip():
                assert line.strip() in python_lines, f"index.rst: {line.strip()!r}"
                checked += 1
    assert checked == 17


def _documented(page: str) -> set[str]:
    module = ""
    names = set()
    for line in page.splitlines():
        if m := re.match(r"\.\. (?:module|currentmodule):: (\S+)", line):
            module = m[1]
        elif m := re.match(r"\.\. (?:auto(?:function|class|exception|data)|py:data):: (\S+)", line):
            names.add(f"{module}.{m[1]}")
    return names


def test_reference_covers_the_public_api() -> None:
    documented = _documented((DOCS / "reference.rst").read_text(encoding="utf-8"))
    missing = [n for n in etcetera.__all__ if f"etcetera.{n}" not in documented]
    assert not missing, f"reference.rst omits etcetera.{missing}"
    for name in etcetera.api.__all__:
        if f"etcetera.api.{name}" in documented:
            continue
        same = getattr(etcetera, name, None) is getattr(etcetera.api, name)
        assert same and f"etcetera.{name}" in documented, f"reference.rst omits api.{name}"


def test_sphinx_build_passes(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[docs]')")
    pytest.importorskip("myst_parser", reason="myst-parser is not installed (the docs extra)")
    html, doctrees = tmp_path / "html", tmp_path / "doctrees"
    argv = ["-W", "--keep-going", "-q", "-b", "html", "-d", str(doctrees), str(DOCS), str(html)]
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert (html / "tutorial.html").is_file()


def test_changelog_has_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[?{re.escape(etcetera.__version__)}\]? - ", changelog, re.M)


def test_the_docs_extra_can_import_every_module_the_reference_documents() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    docs = extras["optional-dependencies"]["docs"]
    # etcetera.distributed imports dask.distributed: without it autodoc warns and its
    # reference section is empty.
    assert "module:: etcetera.distributed" in (DOCS / "reference.rst").read_text()
    assert "etcetera[dask]" in docs or any(d.startswith("distributed") for d in docs), docs


def test_code_blocks_wrap_instead_of_scrolling() -> None:
    conf = (DOCS / "conf.py").read_text()
    sheets = re.findall(r"html_css_files = \[([^\]]*)\]", conf)
    assert sheets, "conf.py adds no style sheet"
    for name in re.findall(r'"([^"]+)"', sheets[0]):
        css = (DOCS / "_static" / name).read_text()
        if re.search(r"pre[^{]*\{[^}]*white-space:\s*pre-wrap", css):
            return
    raise AssertionError("no style sheet makes code blocks wrap")
