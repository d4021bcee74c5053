"""The documentation's examples run and print what the pages say they print.

Every ```python block of the README and docs/*.md runs (the blocks of a page share one
namespace, in order). A python block followed directly by a ```text block must print that
text: compared with whitespace collapsed, numbers compared to a relative 1e-6, and ``...``
matching anything. A block that prints without a text block after it fails, so no output
goes unchecked. The docstring examples of every public and private module pass as doctests,
the capability tables in docs/backends.md are what the backends declare today, and the
docs' list of the public API is ``di.__all__``.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import importlib
import io
import math
import pkgutil
import re
from pathlib import Path

import pytest

import diffinterface
import diffinterface.testsuite

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_BLOCK = re.compile(r"```python\n(.*?)```(?:\s*```text\n(.*?)```)?", flags=re.DOTALL)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
# A number stands alone: not inside a word such as float64 or W1.
_TOKENS = re.compile(rf"(\.\.\.)|(?<![\w.])({_NUMBER})(?![\w.])")


def examples(page: Path) -> list[tuple[str, str | None]]:
    """The page's python blocks, each with the text block that follows it (or None)."""
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(page.read_text())]


def _squash(text: str) -> str:
    return " ".join(text.split())


def output_problem(expected: str, got: str, rtol: float = 1e-6) -> str | None:
    """None if ``got`` matches ``expected`` (see the module docstring), else what differs."""
    expected, got = _squash(expected), _squash(got)
    pattern, numbers, last = [], [], 0
    for m in _TOKENS.finditer(expected):
        pattern.append(re.escape(expected[last : m.start()]))
        if m.group(1):
            pattern.append(".*?")
        else:
            pattern.append(f"({_NUMBER})")
            numbers.append(float(m.group(2)))
        last = m.end()
    pattern.append(re.escape(expected[last:]))
    match = re.fullmatch("".join(pattern), got)
    if match is None:
        return f"printed\n  {got}\nexpected\n  {expected}"
    for want, text in zip(numbers, match.groups(), strict=True):
        value = float(text)
        same_nan = math.isnan(want) and math.isnan(value)
        if not same_nan and not math.isclose(value, want, rel_tol=rtol, abs_tol=1e-12):
            return f"printed {value!r} where the page says {want!r}:\n  {got}"
    return None


@pytest.mark.parametrize(
    ("expected", "got", "ok"),
    [
        ("[1. 2.5]", "[1.   2.5000000001]", True),
        ("value 0.123456", "value 0.1234561", True),
        ("value 0.123456", "value 0.1235", False),
        ("float64 (3,)", "float32 (3,)", False),
        ("Prep(gradient, ...)", "Prep(gradient, backend=AutoJAX(), x=float64[3])", True),
        ("a\n  b", "a b", True),
        ("2 passed", "3 passed", False),
        ("ok", "ok, and more", False),
    ],
)
def test_output_comparison(expected: str, got: str, ok: bool) -> None:
    assert (output_problem(expected, got) is None) == ok


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for i, (code, expected) in enumerate(examples(page)):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:
            e.add_note(f"in {page.name}, python block #{i}")
            raise
        where = f"{page.name}, python block #{i}"
        if expected is None:
            assert not printed.getvalue(), (
                f"{where} prints but no ```text block follows it:\n{printed.getvalue()}"
            )
        else:
            problem = output_problem(expected, printed.getvalue())
            assert problem is None, f"{where}: {problem}"


def _definitions_only(code: str) -> bool:
    """Only imports and function or class definitions: a block that sets up later ones."""
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    return all(isinstance(node, allowed) for node in ast.parse(code).body)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_example_checks_something(page: Path) -> None:
    """A block shows its output, asserts, or only defines what later blocks use."""
    for code, expected in examples(page):
        assert expected is not None or "assert " in code or _definitions_only(code), (
            f"{page.name}: a python block neither shows its output nor asserts:\n{code}"
        )


def _modules() -> list[object]:
    names = ["diffinterface"]
    for package in (diffinterface, diffinterface.testsuite):
        prefix = package.__name__ + "."
        names += [m.name for m in pkgutil.walk_packages(package.__path__, prefix)]
    return [importlib.import_module(n) for n in sorted(set(names))]


def test_docstring_examples() -> None:
    attempted = 0
    for module in _modules():
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
        assert result.failed == 0, f"doctest failures in {module}"
        attempted += result.attempted
    assert attempted > 0


def test_capability_tables_are_current() -> None:
    """docs/backends.md shows what the backends declare today (regenerate with --write)."""
    from diffinterface.testsuite._capabilities import update_page

    assert update_page(ROOT / "docs" / "backends.md", write=False), (
        "docs/backends.md is stale: run python -m diffinterface.testsuite._capabilities --write"
    )


@pytest.mark.parametrize("module", [diffinterface, diffinterface.testsuite], ids=str)
def test_api_reference_lists_every_public_name(module: object) -> None:
    """Every name in __all__ has an entry in docs/api.md, and no entry names anything else."""
    text = (ROOT / "docs" / "api.md").read_text()
    prefix = "diffinterface." if module is diffinterface else "testsuite."
    entries = set(re.findall(rf"^::: {re.escape(prefix)}(?:_\w+\.)?(\w+)$", text, re.MULTILINE))
    assert entries == set(module.__all__)  # type: ignore[attr-defined]


def test_benchmark_markdown_is_what_the_testing_page_copies(tmp_path: Path) -> None:
    """The main job's results/benchmark.md: a dated first line, then one row per case."""
    import numpy as np

    from diffinterface import testsuite as ts
    from diffinterface.testsuite.__main__ import write_markdown

    plain = ts.Scenario("gradient", lambda x: (x * x).sum(), np.ones(3), reference="torch")
    mutating = next(s for s in ts.default_scenarios(dtypes=(np.float64,)) if s.mutates)
    table = ts.benchmark_differentiation(["autograd", "finitediff"], [plain, mutating], budget=0)
    write_markdown(table, tmp_path / "benchmark.md", torch_threads=1)
    lines = (tmp_path / "benchmark.md").read_text().splitlines()

    assert re.fullmatch(r"Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC by .*\.", lines[0])
    header = (
        "| scenario | backend | prepared | × fastest | unprepared | prepare | peak mem | f calls |"
    )
    assert lines[2] == header and len(lines) == 8
    assert lines[4].startswith(f"| {plain.name} | autograd | ") and lines[4].endswith(" kB | 1 |")
    assert lines[5].startswith(f"| {plain.name} | finitediff | ") and lines[5].endswith(" | 7 |")
    assert lines[6] == f"| {mutating.name} | autograd | not supported | | | | | |"
    assert lines[7].startswith(f"| {mutating.name} | finitediff | ")
    page = (ROOT / "docs" / "testsuite.md").read_text()
    assert f"\n{header}\n" in page and "\nMeasured " in page
