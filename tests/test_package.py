"""Packaging and the public surface: __all__ is the public namespace (tests/test_docs.py
checks it against the API reference), importing diffinterface imports no AD framework, and
the built wheel holds every module under `diffinterface`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import diffinterface as di

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_public() -> None:
    assert di.__all__ == sorted(di.__all__)
    assert all(hasattr(di, name) for name in di.__all__)
    public = {
        n for n in vars(di) if not n.startswith("_") and not isinstance(getattr(di, n), type(sys))
    }
    assert public == set(di.__all__)


def test_import_pulls_in_no_framework() -> None:
    code = (
        "import sys, numpy as np, diffinterface as di\n"
        "di.available_backends(); di.AutoJAX(); di.backend('torch'); di.AutoTensorFlow()\n"
        "di.gradient(lambda x: (x * x).sum(), 'finitediff', np.ones(2))\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "di.Distributed('finitediff', workers=ThreadPoolExecutor(1))\n"
        "frameworks = ('jax', 'torch', 'tensorflow', 'autograd', 'scipy', 'dask', 'distributed',"
        " 'cloudpickle')\n"
        "loaded = [m for m in frameworks if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_wheel_contains_every_module(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("diffinterface-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = [
        p.relative_to(ROOT)
        for d in ("diffinterface", "backends", "testsuite")
        for p in (ROOT / d).rglob("*.py")
    ]
    expected = {
        "diffinterface/" + str(p).removeprefix("diffinterface/")
        if p.parts[0] == "diffinterface"
        else f"diffinterface/{p}"
        for p in sources
    }
    assert expected <= names, expected - names
    assert not any(n.startswith(("backends/", "testsuite/", "tests/")) for n in names)
