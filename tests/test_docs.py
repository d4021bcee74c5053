"""Every ```python block in the README and docs/ runs (blocks of a page share one
namespace, in order), and the docstring examples of the public modules pass as doctests."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import diffinterface
import diffinterface.testsuite

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(python_blocks(page)):
        try:
            exec(compile(block, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:
            e.add_note(f"in {page.name}, python block #{i}")
            raise


@pytest.mark.parametrize("module", [diffinterface, diffinterface.testsuite], ids=str)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
