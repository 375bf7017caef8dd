"""Run Alembic from code, with the app's ini file and settings."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command


def alembic_config(ini_path: str, url: str | None = None) -> Config:
    """An Alembic config for ``ini_path``; ``url`` overrides the app's database."""
    config = Config(ini_path)
    here = Path(ini_path).resolve().parent
    if not config.get_main_option("script_location"):
        config.set_main_option("script_location", str(here / "alembic"))
    if url:
        config.attributes["url"] = url
    return config


def upgrade(ini_path: str, url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(ini_path, url), revision)


def downgrade(ini_path: str, url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(ini_path, url), revision)
