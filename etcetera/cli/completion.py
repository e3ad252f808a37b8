"""``etc --install-completion``: cyclopts' installer, imported only when it runs.

Registered by import path like every command, so that the start of any other command
does not import cyclopts' completion package.
"""

from __future__ import annotations

from cyclopts.completion.install import create_install_completion_command

from . import app

install_completion = create_install_completion_command(app.install_completion, add_to_startup=True)
