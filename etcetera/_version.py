"""The package version (one place)."""

__version__ = "1.0.0.dev0"
