#!/usr/bin/python3
"""PyTorch (Debian python3-torch, /usr/bin/python3) peer: all five norms,
forward and backward, through the ATen ops autograd itself calls
(native_layer_norm, native_batch_norm, native_group_norm and their
*_backward), so that the saved statistics are produced/consumed as in
normc's signature. RMSNorm is the HF-Llama composite (PyTorch 1.13 has no
rms_norm); its backward and InstanceNorm's are autograd.grad over the
composite graph (retain_graph), which is what a PyTorch user gets.

Run with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 (outputs are
allocated per call; this keeps glibc from returning them to the OS) and
OMP_PROC_BIND=close OMP_PLACES=cores; bench/run_all.sh does.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_common as pc  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

EPS = 1e-5


def tdtype(name):
    return torch.bfloat16 if name == "bf16" else torch.float32


def make(shape, dt, lo, hi, seed, layout):
    t = torch.from_numpy(pc.rand(shape, lo, hi, seed)).to(dt)
    if layout == "nhwc":
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def rms_composite(x, w, eps):
    h = x.to(torch.float32)
    var = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(var + eps)
    return w * h.to(x.dtype)


def build(op, shape, layout, dtype, d):
    """Returns (fn, note)."""
    dt = tdtype(dtype)
    x = make(shape, dt, -1.0, 3.0, 1, layout)
    c = shape[-1] if op in ("layer_norm", "rms_norm") else shape[1]
    w = make([c], dt, 0.5, 1.5, 2, "")
    b = make([c], dt, -0.5, 0.5, 3, "")
    dy = make(shape, dt, -1.0, 1.0, 5, layout)
    note = ""
    if op == "layer_norm":
        hs = [shape[-1]]
        if d == "fwd":
            return (lambda: torch.native_layer_norm(x, hs, w, b, EPS)), note
        _, mean, rstd = torch.native_layer_norm(x, hs, w, b, EPS)
        mask = [True, True, True]
        return (lambda: torch.ops.aten.native_layer_norm_backward(
            dy, x, hs, mean, rstd, w, b, mask)), note
    if op == "rms_norm":
        eps = torch.finfo(torch.float32).eps
        if d == "fwd":
            def f():
                with torch.no_grad():
                    return rms_composite(x, w, eps)
            return f, "composite"
        xr = x.clone().requires_grad_(True)
        wr = w.clone().requires_grad_(True)
        y = rms_composite(xr, wr, eps)
        return (lambda: torch.autograd.grad(y, [xr, wr], dy,
                                            retain_graph=True)), "composite autograd"
    if op == "batch_norm":
        rm = torch.zeros(c, dtype=dt)
        rv = torch.ones(c, dtype=dt)
        if d == "fwd":
            return (lambda: torch.native_batch_norm(x, w, b, rm, rv, True, 0.1,
                                                    EPS)), note
        _, sm, si = torch.native_batch_norm(x, w, b, rm, rv, True, 0.1, EPS)
        mask = [True, True, True]
        return (lambda: torch.ops.aten.native_batch_norm_backward(
            dy, x, w, rm, rv, sm, si, True, EPS, mask)), note
    if op == "group_norm":
        n, hw = shape[0], shape[2] * shape[3]
        if d == "fwd":
            return (lambda: torch.native_group_norm(x, w, b, n, c, hw, pc.GROUPS,
                                                    EPS)), note
        _, mean, rstd = torch.native_group_norm(x, w, b, n, c, hw, pc.GROUPS, EPS)
        mask = [True, True, True]
        return (lambda: torch.ops.aten.native_group_norm_backward(
            dy, x, mean, rstd, w, n, c, hw, pc.GROUPS, mask)), note
    if op == "instance_norm":
        if d == "fwd":
            def f():
                with torch.no_grad():
                    return F.instance_norm(x, weight=w, bias=b, eps=EPS)
            return f, "F.instance_norm"
        xr = x.clone().requires_grad_(True)
        if layout == "nhwc":
            xr = x.detach().clone(memory_format=torch.channels_last).requires_grad_(True)
        wr = w.clone().requires_grad_(True)
        br = b.clone().requires_grad_(True)
        y = F.instance_norm(xr, weight=wr, bias=br, eps=EPS)
        return (lambda: torch.autograd.grad(y, [xr, wr, br], dy,
                                            retain_graph=True)), "autograd"
    raise ValueError(op)


def out_layout_note(fn, layout):
    if layout != "nhwc":
        return ""
    out = fn()
    t = out[0] if isinstance(out, (tuple, list)) else out
    if not t.is_contiguous(memory_format=torch.channels_last):
        return "output not channels-last"
    return ""


def main():
    ap = pc.common_args(__doc__)
    args = pc.finish_args(ap.parse_args())
    torch.set_num_threads(args.threads)
    rep = pc.Reporter(args, "torch")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}",
          file=sys.stderr)
    for op, shape, layout, dtype, d in pc.cases(args):
        pc.header(op, shape, layout, dtype, d)
        dims = pc.parse_shape(shape)
        if layout == "nhwc":
            pass  # logical NCHW dims, channels_last memory
        try:
            fn, note = build(op, dims, layout, dtype, d)
            fn()
            extra = out_layout_note(fn, layout)
            note = "; ".join(s for s in (note, extra) if s)
        except Exception as e:  # unsupported dtype/layout combination
            rep.unavailable("pytorch", op, shape, layout, dtype, d,
                            f"{type(e).__name__}: {str(e)[:120]}")
            continue
        pc.run_case(rep, args, "pytorch", op, shape, layout, dtype, d, fn, note)
        del fn


if __name__ == "__main__":
    main()
