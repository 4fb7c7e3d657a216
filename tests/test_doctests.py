"""The tiny examples in retune_lib's docstrings run and print what they claim."""

import doctest
import importlib
import pkgutil

import pytest

import retune_lib

MODULES = sorted(m.name for m in pkgutil.iter_modules(retune_lib.__path__, "retune_lib."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path))  # an example that caches writes here, not in the user's cache
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
