"""Shared test helpers: how a fixture describes a repository to the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from etcetera.backends.base import Backend
from etcetera.connect import open_repository
from etcetera.settings import Config


@dataclass(frozen=True)
class RepoSpec:
    """A repository a test may use: its URL and the settings that reach it."""

    url: str
    settings: dict[str, Any] = field(default_factory=dict)

    def config(self, **extra: Any) -> Config:
        """A Config for this repository (``extra`` wins)."""
        return Config(self.url, **{**self.settings, **extra})

    def backend(self, **extra: Any) -> Backend:
        """An open back-end for this repository."""
        return open_repository(self.config(**extra))
