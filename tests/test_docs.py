"""Meta-tests, as datasette has: every hook is documented in docs/plugins.md and tested somewhere."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hub import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"
TESTS = Path(__file__).resolve().parent


def hook_names() -> list[str]:
    return sorted(name for name, value in vars(hookspecs).items()
                  if inspect.isfunction(value) and hasattr(value, "hub_spec"))


def documented() -> dict[str, list[str]]:
    """``{hook: [arguments]}`` from the ``hub_x(a, b)`` headings of docs/plugins.md."""
    headings = re.findall(r"^#{2,4} (hub_\w+)\(([^)]*)\)\s*$", DOCS.read_text(), re.MULTILINE)
    return {name: [arg.strip() for arg in args.split(",") if arg.strip()] for name, args in headings}


def test_there_are_hooks_to_check():
    assert "hub_register_routes" in hook_names() and len(hook_names()) >= 10


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_with_its_signature(hook):
    docs = documented()
    assert hook in docs, f"docs/plugins.md has no '## {hook}(...)' section"
    arguments = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert docs[hook] == arguments, f"docs/plugins.md shows {hook}({', '.join(docs[hook])}), " \
                                    f"the hookspec is {hook}({', '.join(arguments)})"


def test_the_docs_document_no_hook_that_does_not_exist():
    assert set(documented()) <= set(hook_names())


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_named_in_a_test(hook):
    sources = [path.read_text() for path in TESTS.rglob("test_*.py") if path.name != "test_docs.py"]
    assert any(re.search(rf"\b{hook}\b", source) for source in sources), (
        f"{hook} is named in no test under tests/: write one that exercises it"
    )


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_docstring_contract(hook):
    assert len(inspect.getdoc(getattr(hookspecs, hook)) or "") > 40
