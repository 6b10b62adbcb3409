"""Compile the Triton kernels for a GPU target without a GPU, and print their resource usage.

    python -m sparsegraph.kernels.triton_compile_check [--target cuda:80] [--quick]

Triton compiles ahead of time for a named target (``triton.compile`` with a ``GPUTarget``, as its
own AOT tool ``triton.tools.compile`` does): Python -> TTIR -> TTGIR -> LLVM IR -> PTX -> cubin,
the last step by the ``ptxas`` Triton ships. That needs no GPU and no driver, so on this machine it
shows that the kernels *compile* for a real GPU with exactly the constexpr parameters the launcher
would pass (``kernels.triton_backend._launch_options``), and what they would use per program:
registers per thread, spill stack (``STACK`` > 0 means registers spilled to local memory) and
shared memory, read back from the cubin with the ``cuobjdump`` Triton ships. It does not run
anything: correctness and speed on a GPU remain unmeasured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Any

# The kernels must be JIT functions (compiled), not interpreter objects: decide before triton loads.
os.environ["TRITON_INTERPRET"] = "0"
# Triton 3.9 warns when this is unset; 1 keeps its current default (FMA fusion on).
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
# A fresh cache, so every kernel is really compiled (and timed) by this run.
os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="triton_compile_check_")

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

from sparsegraph.kernels import triton_backend as tb  # noqa: E402

_POINTER_DTYPE = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}
_TENSORS = ("Q", "K", "V", "O", "DO", "DQ", "DK", "DV")
_INDEX = ("row_ptr", "col_idx", "mask_idx", "masks", "col_ptr", "row_idx", "col_perm")


def _signature(kernel: Any, dtype: torch.dtype, constexprs: dict[str, Any]) -> dict[str, str]:
    sig = {}
    for name in kernel.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in _TENSORS:
            sig[name] = "*" + _POINTER_DTYPE[dtype]
        elif name in ("LSE", "DELTA"):
            sig[name] = "*fp32"
        elif name == "KPM":
            sig[name] = "*u8"
        elif name in _INDEX:
            sig[name] = "*i32"
        elif name in ("qk_scale", "sm_scale"):
            sig[name] = "fp32"
        else:  # strides, sizes, head counts
            sig[name] = "i32"
    return sig


def _resources(cubin: bytes, cuobjdump: str) -> tuple[str, str]:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([cuobjdump, "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    fields = dict(tok.split(":", 1) for line in out.splitlines() if "REG:" in line for tok in line.split())
    return fields.get("REG", "?"), fields.get("STACK", "?")


def compile_kernel(kernel: Any, target: GPUTarget, dtype: torch.dtype, block: int, head_dim: int,
                   max_tile: int) -> dict[str, Any]:
    """Compile one kernel as ``_launch_options`` would configure it (per-head layout, key padding:
    the heaviest variant). Returns its metadata and cubin."""
    layout = SimpleNamespace(block_q=block, block_k=block, heads=2)
    call = tb._Call(scale=1.0, kpm=torch.zeros(1, dtype=torch.uint8), allow_tf32=False, max_tile=max_tile)
    opts = tb._launch_options(dtype, call, layout, head_dim)
    num_warps = opts.pop("num_warps")
    names = set(kernel.arg_names)
    constexprs = {k: v for k, v in opts.items() if k in names}
    src = triton.compiler.ASTSource(fn=kernel, signature=_signature(kernel, dtype, constexprs), constexprs=constexprs)
    backend = triton.compiler.make_backend(target)
    options = backend.parse_options({"num_warps": num_warps})
    t0 = time.perf_counter()
    compiled = triton.compile(src, target=target, options=options.__dict__)
    return dict(seconds=time.perf_counter() - t0, warps=num_warps, stages=options.num_stages,
                tile=f"{opts['TILE_Q']}x{opts['TILE_K']}", shared=compiled.metadata.shared,
                cubin=compiled.asm.get("cubin"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cuda:80", help="backend:arch, e.g. cuda:80 (A100), cuda:90 (H100)")
    parser.add_argument("--quick", action="store_true", help="float16, block 64, head_dim 64 only")
    args = parser.parse_args(argv)
    backend_name, arch = args.target.split(":")
    if backend_name != "cuda":
        raise SystemExit(f"--target must be cuda:<arch> (resource usage is read with cuobjdump), got {args.target!r}")
    target = GPUTarget("cuda", int(arch), 32)
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if args.quick:
        cases = [(torch.float16, 64, 64, 64)]
    else:
        cases = [(torch.float16, b, d, min(b, 128)) for b in (16, 32, 64, 128) for d in (64, 128)]
        cases += [(torch.float16, 128, 128, 64), (torch.bfloat16, 64, 64, 64), (torch.float32, 64, 64, 32),
                  (torch.float32, 64, 64, 64)]
    kernels = [tb._attn_fwd, tb._attn_bwd_dq, tb._attn_bwd_dkdv]
    total = len(cases) * len(kernels)
    print(f"Triton {triton.__version__}, target {args.target}; per-head layout with key padding; "
          f"num_stages = the backend default; STACK > 0 = register spills", flush=True)
    print(f"{'kernel':<16} {'dtype':<9} {'block':>5} {'tile':>7} {'d':>4} {'warps':>5} {'regs':>5} "
          f"{'stack B':>7} {'smem B':>7} {'compile s':>9}")
    done = 0
    for dtype, block, d, max_tile in cases:
        for kernel in kernels:
            done += 1
            print(f"\r[{done}/{total}] compiling {kernel.__name__} ...", end="", file=sys.stderr, flush=True)
            r = compile_kernel(kernel, target, dtype, block, d, max_tile)
            regs, stack = _resources(r["cubin"], cuobjdump)
            print(f"\r{kernel.__name__:<16} {str(dtype).split('.')[1]:<9} {block:>5} {r['tile']:>7} {d:>4} "
                  f"{r['warps']:>5} {regs:>5} {stack:>7} {r['shared']:>7} {r['seconds']:>9.1f}", flush=True)
    print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
