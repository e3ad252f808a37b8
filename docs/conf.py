"""Sphinx configuration of etcetera's manual (``tox -e docs``, warnings are errors)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Document the checkout, not an installed copy.
sys.path.insert(0, str(ROOT))

from etcetera import __version__  # noqa: E402

project = "etcetera"
author = "etcetera maintainers"
copyright = "etcetera maintainers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    # The command reference is generated from the etc app itself (docs/cli.rst).
    "cyclopts.ext.sphinx",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Markdown pages (format.md, configuration.md ...) are also read by people on GitHub:
# headings get anchors so that "page.md#section" links resolve in both places.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_class_signature = "mixed"
# pydantic's BaseSettings machinery is not part of etcetera's API.
autodoc_inherit_docstrings = False

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

html_theme = "alabaster"
html_title = f"etcetera {__version__}"
html_static_path = ["_static"]
# Code blocks wrap at the window's width instead of scrolling sideways.
html_css_files = ["etcetera.css"]

# `bytes` in a signature or an attribute's type (etc.cat's result, Sample.data) is the
# builtin, but Sphinx also finds the `bytes` attributes of Status and GcResult for the
# bare name and warns that it is ambiguous. Only that warning is silenced: without
# nitpicky mode, unresolved names warn of nothing anyway.
autodoc_type_aliases = {"bytes": "builtins.bytes"}
suppress_warnings = ["ref.python"]
