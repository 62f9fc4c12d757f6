"""The public API: every advertised name imports, lazily, and is the object its package defines."""

import importlib
import subprocess
import sys

import autotrain_pl


def test_every_public_name_resolves_to_its_packages_object():
    for name in autotrain_pl.__all__:
        obj = getattr(autotrain_pl, name)
        home = importlib.import_module(autotrain_pl._EXPORTS[name])
        assert getattr(home, name) is obj, name
    assert autotrain_pl.__version__


def test_importing_the_package_loads_no_heavy_dependency():
    code = ("import sys, autotrain_pl; "
            "print(sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
