"""The command line builds its parser without importing torch (start-up in about a second)."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_parser_does_not_import_torch() -> None:
    code = ("import sys; from experiments.cli import build_parser; p = build_parser(); "
            "p.parse_args(['bench', '--quick']); p.parse_args(['pretrain', '--demo']); "
            "print(sorted(m for m in ('torch', 'triton') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_kernels_names_load_on_first_use() -> None:
    from sparsegraph import kernels
    from sparsegraph.kernels import attention, prepare

    assert callable(attention) and callable(prepare)
    assert set(kernels.__all__) <= set(dir(kernels))
    try:
        kernels.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
