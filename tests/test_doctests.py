"""Every docstring example in the package runs as written."""

import doctest
import importlib
import pkgutil

import pytest

import trainsentry.consumers
import trainsentry.producers
import trainsentry.protocol
import trainsentry.rules

OPTIONAL = {"torch", "sklearn"}


def _modules() -> list[str]:
    names = ["trainsentry.protocol"]
    for package in (trainsentry.protocol, trainsentry.producers, trainsentry.consumers, trainsentry.rules):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in OPTIONAL:
            pytest.skip(f"{name} needs {exc.name}")
        raise
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
