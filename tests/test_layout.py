"""The layout the install and the architecture rely on, checked from the files themselves."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
FOLDERS = {name: Path(folder) for name, folder in PROJECT["package-dir"].items()}


def _packages_on_disk() -> set[str]:
    found = set()
    for name, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join((name, *relative.parts)))
    return found


def test_every_package_folder_is_listed_for_the_install() -> None:
    # The strict editable install and the wheel link only the packages listed in pyproject.toml.
    assert _packages_on_disk() == set(PROJECT["packages"])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules_of(package: str) -> list[Path]:
    return sorted((ROOT / FOLDERS[package]).rglob("*.py"))


def test_dependencies_point_one_way() -> None:
    forbidden = {
        "trainsentry.protocol": ("trainsentry.producers", "trainsentry.consumers", "trainsentry.rules",
                                 "aiokafka"),
        "trainsentry.rules": ("trainsentry.producers", "trainsentry.consumers", "aiokafka"),
        "trainsentry.producers": ("trainsentry.consumers", "trainsentry.rules"),
    }
    wrong = []
    for package, banned in forbidden.items():
        for path in _modules_of(package):
            for name in _imports(path):
                if name.startswith(banned):
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_no_module_is_longer_than_about_400_lines() -> None:
    long = [f"{path.relative_to(ROOT)}: {n}" for package in FOLDERS for path in _modules_of(package)
            if (n := len(path.read_text().splitlines())) > 420]
    assert long == []
