"""``fourloops init``: scaffold a working project from the bundled example."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fourloops.config import CONFIG_FILE
from fourloops.errors import ConfigError
from fourloops.examples import example_path

__all__ = ["init_project", "project_name"]

_SKIP = shutil.ignore_patterns(".fourloops", "__pycache__", "*.pyc")

#: The ``.gitignore`` of a new project: local stores, artifacts and the events' hash key.
GITIGNORE = "# fourloops: local stores, artifacts and the events' hash key\n.fourloops/\n__pycache__/\n"


def init_project(target: str | Path, *, example: str = "flights", force: bool = False) -> Path:
    """Copy the example project into ``target`` (created if needed) and return its path.

    Refuses to overwrite an existing project unless ``force``.
    """
    target = Path(target)
    if (target / CONFIG_FILE).exists() and not force:
        raise ConfigError(f"{target / CONFIG_FILE}: a project already exists here (use --force to overwrite)")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: exists and is not a folder")
    shutil.copytree(example_path(example), target, ignore=_SKIP, dirs_exist_ok=True)
    _name_after_folder(target / CONFIG_FILE, target.resolve().name)
    ignore = target / ".gitignore"
    if not ignore.exists():  # the stores and the events' hash key stay out of version control
        ignore.write_text(GITIGNORE)
    return target.resolve()


def project_name(folder: str) -> str:
    """A project name from a folder name: letters, digits, ``_`` and ``-`` (others become ``-``).

    >>> project_name("my project!")
    'my-project'
    """
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", folder).strip("-")
    return name or "project"


def _name_after_folder(config: Path, folder: str) -> None:
    """Set ``[project] name`` to the folder's name: two projects never share Redis keys by accident."""
    text = config.read_text(encoding="utf-8")
    named = re.sub(r'(?m)^name = ".*"$', f'name = "{project_name(folder)}"', text, count=1)
    config.write_text(named, encoding="utf-8")
