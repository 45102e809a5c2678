"""An adapter given as module:Class that Python cannot find: the error says how to make it importable (issue 25,
item 15)."""

from __future__ import annotations

import pytest
from gradspec.running.registry import EngineNotFound, load_adapter


def test_an_adapter_module_that_is_not_importable_says_how_to_make_it_so():
    with pytest.raises(EngineNotFound) as caught:
        load_adapter("no_such_adapter_module.sub:MyAdapter")
    message = str(caught.value)
    assert message.startswith("cannot load adapter 'no_such_adapter_module.sub:MyAdapter': No module named")
    assert "PYTHONPATH=FOLDER gradspec run --engine no_such_adapter_module.sub:MyAdapter" in message
    assert "no_such_adapter_module.py or the package no_such_adapter_module/" in message
    assert "gradspec.adapters entry point" in message


def test_a_missing_dependency_inside_an_importable_adapter_is_not_blamed_on_the_path(tmp_path, monkeypatch):
    (tmp_path / "needs_more.py").write_text("import no_such_engine_package\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EngineNotFound) as caught:
        load_adapter("needs_more:MyAdapter")
    assert "No module named 'no_such_engine_package'" in str(caught.value) and "PYTHONPATH" not in str(caught.value)


def test_a_folder_on_pythonpath_makes_the_adapter_importable(pytester):
    pytester.makepyfile(my_adapter='''
        from gradspec.adapters.reference_adapter import ReferenceAdapter

        class MyAdapter(ReferenceAdapter):
            name = "mine"
    ''')
    pytester.syspathinsert()  # what PYTHONPATH=FOLDER does
    assert load_adapter("my_adapter:MyAdapter").name == "mine"
