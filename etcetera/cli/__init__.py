"""The ``etc`` command line: one command per module, registered lazily.

``etc --help`` imports no cloud SDK: commands import :mod:`etcetera.api` only when run,
and the API imports a back-end only when a repository of its kind is opened.

The command modules do not postpone their annotations (no ``from __future__ import
annotations``): cyclopts reads the signatures of the launcher and the command on every
run, and would evaluate string annotations again each time (3 ms of every command).
"""

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

from cyclopts import App, Group, Parameter

from . import _process
from ._common import STATE
from ._help import HelpScreen, version_line
from ._run import run


def _default_worth_showing(value: object) -> str | None:
    if value is None or value is False or value in ((), []):
        return None
    return str(value)


app = App(
    name="etc",
    help="Share datasets through cloud storage (S3, Google Cloud Storage, file://).",
    version=version_line,
    result_action="return_value",
    exit_on_error=False,
    print_error=False,  # main() tells a usage error in one line, with the usage line
    help_on_error=False,
    suppress_keyboard_interrupt=False,  # main() says what an interrupted transfer kept
    help_formatter=HelpScreen(),
    # A flag is only its positive form (no --no-force, no --empty-partition), and a
    # default is shown when it says something (not False, not None).
    default_parameter=Parameter(negative="", show_default=_default_worth_showing),
    group_parameters=Group("Options", sort_key=1),
)
# Shown once, after the command's own options.
GLOBAL_OPTIONS = Group("Global options", sort_key=100)

# Help lines are given here so that `etc --help` need not import the command modules.
app.command("etcetera.cli.register:register", help="Register a dataset folder under a name.")
app.command("etcetera.cli.create:create", help="Create an empty dataset in the local store.")
app.command(
    "etcetera.cli.listing:list_",
    name="list",
    alias="ls",
    help="List datasets, or a version's files (NAME[@K] [PATH]).",
)
app.command("etcetera.cli.files:cat", help="Write a file of a version to stdout, unpulled.")
app.command("etcetera.cli.purge:purge", help="Remove a local dataset.")
app.command("etcetera.cli.push:push", help="Push a local dataset as its next version.")
app.command("etcetera.cli.pull:pull", help="Pull a dataset (NAME or NAME@VERSION).")
app.command("etcetera.cli.info:info", help="Show a dataset's versions, sizes and partitions.")
app.command("etcetera.cli.log:log", help="Show every version of a dataset and what it changed.")
app.command("etcetera.cli.diff:diff", help="Compare two versions or a version and the local copy.")
app.command("etcetera.cli.status:status", help="Show what a push would send, without sending.")
app.command("etcetera.cli.verify:verify", help="Re-hash a local dataset against its manifest.")
app.command("etcetera.cli.rm:rm", help="Delete a dataset or version from the repository.")
app.command("etcetera.cli.gc:gc", help="Delete unreferenced objects from the repository.")
app.command("etcetera.cli.config:config", help="Show the effective settings.")


app.command(
    "etcetera.cli.completion:install_completion",
    name="--install-completion",
    help=(
        "Install shell completion for this application.\n\n"
        "This command generates and installs the completion script to the appropriate "
        "location for your shell. After installation, you may need to restart your shell "
        "or source your shell configuration file."
    ),
    group=GLOBAL_OPTIONS,
)
for _flag in ("--help", "--version"):
    app[_flag].group = GLOBAL_OPTIONS
app.meta.suppress_keyboard_interrupt = False


@app.meta.default
def _launcher(
    *tokens: Annotated[str, Parameter(show=False, allow_leading_hyphen=True)],
    config: Annotated[Path | None, Parameter(name=["--config"], group=GLOBAL_OPTIONS)] = None,
    url: Annotated[str | None, Parameter(name=["--url"], group=GLOBAL_OPTIONS)] = None,
    verbose: Annotated[
        bool, Parameter(name=["--verbose", "-v"], negative="", group=GLOBAL_OPTIONS)
    ] = False,
    quiet: Annotated[
        bool, Parameter(name=["--quiet", "-q"], negative="", group=GLOBAL_OPTIONS)
    ] = False,
    concurrency: Annotated[
        int | None, Parameter(name=["--concurrency", "-j"], group=GLOBAL_OPTIONS)
    ] = None,
    bwlimit: Annotated[str | None, Parameter(name=["--bwlimit"], group=GLOBAL_OPTIONS)] = None,
) -> int:
    """Global options.

    Parameters
    ----------
    config
        TOML settings file to read instead of ~/.etc.toml.
    url
        Repository URL (overrides the settings).
    verbose
        Show tracebacks and more detail.
    quiet
        Print nothing but errors.
    concurrency
        Requests in flight (the concurrency setting).
    bwlimit
        Bandwidth limit per second, e.g. 20M (the bandwidth_limit setting).
    """
    STATE.config_file = config
    STATE.url = url
    STATE.verbose = verbose
    STATE.quiet = quiet
    STATE.overrides = {"concurrency": concurrency, "bandwidth_limit": bwlimit}
    result = app(tokens)
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``etc``: results on stdout, one line on stderr for any error.

    Exit status: 0 done, 1 an error, 2 a usage error, 130 or 143 interrupted by SIGINT
    or SIGTERM; a closed pipe ends it silently, by SIGPIPE, as it ends ``git log``.
    """
    _process.return_freed_buffers_to_the_os()
    start = _process.StartUp(seconds=1.0)  # longer than a no-op takes (0.4-0.9 s here)
    args = sys.argv[1:] if argv is None else argv
    status = run(_entry(args), args)
    start.end()
    _process.skip_the_collections_of_exit()
    sys.exit(status)


def _entry(args: Sequence[str]) -> Callable[[Sequence[str]], object]:
    """What reads ``args``: the meta app (global options, help), or the launcher itself.

    cyclopts takes as long to parse the launcher's options as the command's (8 ms of
    every command here). A command line with no option at all (``etc pull NAME``) has no
    global option to read: the launcher runs directly, with every global at its default.
    """
    if not args or any(a.startswith("-") for a in args):
        return app.meta
    return lambda tokens: _launcher(*tokens)
