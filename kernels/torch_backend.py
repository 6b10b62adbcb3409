"""The ``torch`` backend: memory-linear block-sparse attention in plain PyTorch (fast on CPU).

Works chunk by chunk through the plan of ``kernels.torch_plan`` (query-block rows grouped by
their number of key blocks ``L``; rows listing most of the keys computed densely). For a chunk of
rows it gathers their key and value blocks and computes with batched matmuls (BigBird's
"blockify" scheme, Zaheer et al. 2020, without padding rows to the longest one)

    S = scale * Q_c K_c^T   [rows, block_q, L * block_k]; non-edges and padding keys -> -inf
    P = softmax(S)          (a query without any edge: softmax gives NaN -> P = 0: output and
                             gradients 0, never NaN)
    O_c = P V_c.

Backward: its own ``torch.autograd.Function`` with FlashAttention-style recomputation (Dao et
al. 2022): nothing quadratic is saved, only q, k, v and the output. Per chunk S and P are
recomputed and, with ``D = rowsum(dO * O)``,

    dV_c = P^T dO_c,   dS = P * (dO_c V_c^T - D),   dQ_c = scale * dS K_c,   dK_c = scale * dS^T Q_c;

``dK_c`` and ``dV_c`` are scatter-added into dK and dV. Memory: inputs, outputs and gradients
(linear in n) plus work buffers of a few ``torch_plan.CHUNK_BYTES``, allocated once per call and
reused by every chunk.

float16 / bfloat16 inputs are computed in float32 (half-precision CPU matmuls are not faster here
and lose accuracy); the result has the input dtype.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from sparsegraph.kernels.device import DeviceLayout
from sparsegraph.kernels.torch_plan import Chunk, Plan, plan_for

__all__ = ["attention"]

_NEG_INF = float("-inf")
_COMPUTE = torch.float32


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: DeviceLayout,
    *,
    scale: float,
    key_padding_mask: torch.Tensor | None,
) -> torch.Tensor:
    """Block-sparse attention over ``layout`` (inputs checked by ``kernels.attention``)."""
    return _BlockSparseAttention.apply(q, k, v, key_padding_mask, layout, scale)


class _BlockSparseAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, key_padding_mask, layout: DeviceLayout, scale: float):  # type: ignore[override]
        geo = _Geometry(q, k, layout)
        plan = plan_for(layout, geo.B, geo.H, geo.d)
        qf, kf, vf = geo.blocks(q, geo.Qb, geo.bq), geo.blocks(k, geo.Kb, geo.bk), geo.blocks(v, geo.Kb, geo.bk)
        kp = geo.key_padding_blocks(key_padding_mask)
        qp = qf.index_select(0, plan.order)  # queries in plan order: each chunk a contiguous slice
        outp = _with_zero_row(qp)

        def run(chunk: Chunk, work: _Work) -> None:
            kc, vc = _keys(kf, vf, chunk, geo, work)
            p = _probabilities(qp[chunk.start:chunk.end], kc, chunk, plan, geo, work, scale, kp)
            if chunk.cols is None:
                torch.mm(p, vc, out=outp[chunk.start:chunk.end].view(-1, geo.d))
            else:
                torch.bmm(p, vc, out=outp[chunk.start:chunk.end])

        _run_chunks(plan, geo, run, backward=False, device=qf.device)
        result = geo.unblocks(outp.index_select(0, plan.inverse), geo.n_q, q.dtype)
        ctx.save_for_backward(q, k, v, result, key_padding_mask)
        ctx.layout, ctx.scale = layout, scale
        return result

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        q, k, v, out, key_padding_mask = ctx.saved_tensors
        layout, scale = ctx.layout, ctx.scale
        geo = _Geometry(q, k, layout)
        plan = plan_for(layout, geo.B, geo.H, geo.d)
        qf, kf, vf = geo.blocks(q, geo.Qb, geo.bq), geo.blocks(k, geo.Kb, geo.bk), geo.blocks(v, geo.Kb, geo.bk)
        kp = geo.key_padding_blocks(key_padding_mask)
        qp = qf.index_select(0, plan.order)
        dop = geo.blocks(grad_out, geo.Qb, geo.bq).index_select(0, plan.order)
        op = geo.blocks(out, geo.Qb, geo.bq).index_select(0, plan.order)
        # -D = -rowsum(dO * O) as a batched dot product (no [A, bq, d] temporary)
        minus_delta = torch.matmul(dop.unsqueeze(-2), op.unsqueeze(-1)).view(dop.shape[:2]).neg_()
        del op
        dqp = _with_zero_row(qp)
        d, Kb = geo.d, geo.Kb

        def run(chunk: Chunk, work: _Work) -> None:
            a, b = chunk.start, chunk.end
            dk, dv = work.dk, work.dv  # per-worker accumulators: workers never share a write
            kc, vc = _keys(kf, vf, chunk, geo, work)
            qc, doc = qp[a:b], dop[a:b]
            p = _probabilities(qc, kc, chunk, plan, geo, work, scale, kp)
            if chunk.cols is None:  # dense: 2-D matmuls against the slice's whole key sequence
                s = chunk.slice_
                q2, do2 = qc.view(-1, d), doc.view(-1, d)
                ds = torch.addmm(minus_delta[a:b].view(-1, 1), do2, vc.t(), out=_take(work.dp, *p.shape))
                dv[s * Kb:(s + 1) * Kb].view(-1, d).addmm_(p.t(), do2)
                ds.mul_(p)  # dS = P * (dP - D)
                torch.addmm(dqp[a:b].view(-1, d), ds, kc, beta=0, alpha=scale, out=dqp[a:b].view(-1, d))
                dk[s * Kb:(s + 1) * Kb].view(-1, d).addmm_(ds.t(), q2, alpha=scale)
            else:
                ds = torch.baddbmm(minus_delta[a:b].unsqueeze(-1), doc, vc.transpose(1, 2),
                                   out=_take(work.dp, *p.shape))
                dvc = torch.bmm(p.transpose(1, 2), doc, out=_take(work.dvc, *vc.shape))
                ds.mul_(p)  # dS = P * (dP - D)
                torch.baddbmm(dqp[a:b], ds, kc, beta=0, alpha=scale, out=dqp[a:b])
                dkc = torch.baddbmm(_take(work.dkc, *kc.shape), ds.transpose(1, 2), qc, beta=0, alpha=scale,
                                    out=_take(work.dkc, *kc.shape))
                dk.index_add_(0, chunk.cols, dkc.view(-1, geo.bk, d))
                dv.index_add_(0, chunk.cols, dvc.view(-1, geo.bk, d))

        works = _run_chunks(plan, geo, run, backward=True, device=qf.device, like=kf)
        dk, dv = works[0].dk, works[0].dv
        for w in works[1:]:
            dk.add_(w.dk)
            dv.add_(w.dv)
        return (geo.unblocks(dqp.index_select(0, plan.inverse), geo.n_q, q.dtype), geo.unblocks(dk, geo.n_k, k.dtype),
                geo.unblocks(dv, geo.n_k, v.dtype), None, None, None)


def _run_chunks(plan: Plan, geo: "_Geometry", run, *, backward: bool, device: torch.device,
                like: torch.Tensor | None = None) -> list["_Work"]:
    """Run ``run(chunk, work)`` for every chunk; return the workers' ``_Work`` objects.

    On CPU with ``torch.get_num_threads() = T > 1`` the chunks are shared out dynamically among T
    Python threads while torch's intra-op parallelism is set to 1 (restored afterwards). Torch ops
    release the GIL, so the threads compute in parallel, and the call has no per-op fork/join: on
    a busy machine each fork/join of an intra-op parallel region can wait a whole scheduler time
    slice for its second thread, which made the chunked loop several times slower than its work.
    Chunks write disjoint output rows; dK/dV go to per-worker accumulators, summed by the caller.
    """
    chunks = sorted(plan.chunks, key=lambda c: -c.rows * c.L)  # largest first: better balance
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    workers = max(1, min(threads, len(chunks)))
    works = [_Work(plan, geo, backward, like, first=(w == 0)) for w in range(workers)]
    if workers == 1:
        for chunk in chunks:
            run(chunk, works[0])
        return works
    lock = threading.Lock()
    state = {"next": 0, "failed": False}

    inference = torch.is_inference_mode_enabled()

    def loop(work: "_Work") -> None:
        # grad and inference modes are thread-local: workers take the caller's (grad is off in
        # Function.forward/backward; tensors made under inference_mode need it to be written)
        with torch.inference_mode(inference), torch.no_grad():
            _loop(work)

    def _loop(work: "_Work") -> None:
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
                if i >= len(chunks) or state["failed"]:
                    return
            try:
                run(chunks[i], work)
            except BaseException:
                state["failed"] = True
                raise

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers - 1) as pool:
            futures = [pool.submit(loop, w) for w in works[1:]]
            loop(works[0])
            for f in futures:
                f.result()
    finally:
        torch.set_num_threads(threads)
    return works


class _Geometry:
    """Shapes, and the flattened block views ``[batch * heads * blocks, block, d]`` (float32,
    zero-padded to whole blocks: the tail blocks' masks exclude the padding)."""

    def __init__(self, q: torch.Tensor, k: torch.Tensor, layout: DeviceLayout) -> None:
        bl = layout.layout
        self.B, self.H, self.n_q, self.d = q.shape
        self.n_k = k.shape[2]
        self.bq, self.bk, self.Qb, self.Kb = bl.block_q, bl.block_k, bl.num_q_blocks, bl.num_k_blocks

    def blocks(self, t: torch.Tensor, nblocks: int, size: int) -> torch.Tensor:
        n = t.shape[2]
        t = t.to(_COMPUTE)
        if n != nblocks * size:
            padded = t.new_zeros(self.B, self.H, nblocks * size, self.d)
            padded[:, :, :n] = t
            t = padded
        return t.contiguous().view(-1, size, self.d)

    def unblocks(self, t: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
        t = t.view(self.B, self.H, -1, self.d)
        if t.shape[2] != n:
            t = t[:, :, :n].contiguous()
        return t.to(dtype)

    def key_padding_blocks(self, kpm: torch.Tensor | None) -> torch.Tensor | None:
        """Key padding as bool ``[batch * Kb, block_k]`` (True = ignore), or None."""
        if kpm is None:
            return None
        if self.n_k != self.Kb * self.bk:
            kpm = torch.nn.functional.pad(kpm, (0, self.Kb * self.bk - self.n_k), value=True)
        return kpm.reshape(self.B * self.Kb, self.bk)


class _Work:
    """One worker's buffers sized for the largest chunk, allocated once per call and reused by
    every chunk (large fresh temporaries per matmul would be page-faulted in again and again);
    in backward also the worker's dK/dV accumulators (worker 0 zero-initialises the results)."""

    def __init__(self, plan: Plan, geo: "_Geometry", backward: bool, like: torch.Tensor | None,
                 first: bool) -> None:
        E, bq, bk, d = plan.max_entries, geo.bq, geo.bk, geo.d
        dev = plan.tiles.device
        empty = lambda n: torch.empty(n, dtype=_COMPUTE, device=dev)  # noqa: E731
        self.k = empty(E * bk * d)
        self.v = empty(E * bk * d)
        self.s = empty(E * bq * bk)
        if backward:
            self.dp = empty(E * bq * bk)
            self.dkc = empty(E * bk * d)
            self.dvc = empty(E * bk * d)
            self.dk = torch.zeros_like(like)
            self.dv = torch.zeros_like(like)


def _with_zero_row(like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor like ``like`` with one extra block row, that row zero: chunks fill
    rows ``0..A-1`` and ``index_select(plan.inverse)`` maps rows without blocks to the zero row."""
    t = like.new_empty((like.shape[0] + 1, *like.shape[1:]))
    t[-1].zero_()
    return t


def _take(buf: torch.Tensor, *shape: int) -> torch.Tensor:
    return buf[: math.prod(shape)].view(*shape)


def _keys(kf: torch.Tensor, vf: torch.Tensor, chunk: Chunk, geo: _Geometry, work: _Work):
    """The chunk's keys and values: ``[rows, L * bk, d]`` gathered, or (dense) the slice's
    ``[Kb * bk, d]`` as a view."""
    d = geo.d
    if chunk.cols is None:
        s, Kb = chunk.slice_, geo.Kb
        return kf[s * Kb:(s + 1) * Kb].view(-1, d), vf[s * Kb:(s + 1) * Kb].view(-1, d)
    n = chunk.cols.numel()
    kc = torch.index_select(kf, 0, chunk.cols, out=_take(work.k, n, geo.bk, d))
    vc = torch.index_select(vf, 0, chunk.cols, out=_take(work.v, n, geo.bk, d))
    shape = (chunk.rows, chunk.L * geo.bk, d)
    return kc.view(shape), vc.view(shape)


def _probabilities(qc, kc, chunk: Chunk, plan: Plan, geo: _Geometry, work: _Work, scale: float, kp):
    """Masked softmax of the chunk's scores, in ``work.s``: ``[rows, bq, L * bk]`` (sparse) or
    ``[rows * bq, Kb * bk]`` (dense)."""
    C, L, bq, bk, d = chunk.rows, chunk.L, geo.bq, geo.bk, geo.d
    if chunk.cols is None:
        s = _take(work.s, C * bq, L * bk)
        torch.addmm(s, qc.view(-1, d), kc.t(), beta=0, alpha=scale, out=s)
    else:
        s = _take(work.s, C, bq, L * bk)
        torch.baddbmm(s, qc, kc.transpose(1, 2), beta=0, alpha=scale, out=s)
    masked = False
    if chunk.tiles is not None:
        m = plan.tiles.index_select(0, chunk.tiles).view(C, L, bq, bk).permute(0, 2, 1, 3)
        s.view(C, bq, L, bk).masked_fill_(m, _NEG_INF)
        masked = True
    if kp is not None:
        pad = kp.index_select(0, chunk.pad_cols)  # [C * L, bk] (dense: [Kb, bk])
        if chunk.cols is None:
            s.masked_fill_(pad.view(1, L * bk), _NEG_INF)
        else:
            s.masked_fill_(pad.view(C, 1, L * bk), _NEG_INF)
        masked = True
    if s.device.type == "cpu":
        torch.softmax(s, -1, out=s)  # in place: the CPU kernel reads each row before writing it
    else:
        s.copy_(torch.softmax(s, -1))
    if masked:  # a query with every entry masked has no edges: NaN from softmax -> P = 0
        torch.nan_to_num_(s, nan=0.0)
    return s
