#!/usr/bin/python3
"""Correctness cross-check run next to the benchmarks: normc kernels (called
through ctypes, single-threaded over all work items) against a float64
PyTorch reference, and PyTorch's own CPU result in the storage dtype against
the same reference, for every op, layout and dtype of the benchmark.

Metric per output: max |out - ref| / (atol + rtol * |ref|) with
torch.testing.assert_close's defaults for the storage dtype (f32: 1.3e-6,
1e-5; bf16: 1.6e-2, 1e-5): <= 1 passes. Outputs kept in f32 whatever the
storage (mean, rstd) use the f32 tolerance.

Usage: /usr/bin/python3 bench/check_normc.py [--normc build/bin/normc]
       [--kernel-dir build-bench/kernels-check] [--json FILE] [--big]
"""

import argparse
import ctypes
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_common as pc  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

TOL = {"f32": (1.3e-6, 1e-5), "bf16": (1.6e-2, 1e-5)}


def compile_bundle(normc, kdir, op, phys, layout, dtype):
    if op in ("layer_norm", "rms_norm"):
        shape = f"?x{phys[-1]}"
    else:
        shape = "?x" + "x".join(str(v) for v in phys[1:])
    flags = [f"--op={op}", f"--shape={shape}", f"--dtype={dtype}", "--backward",
             "--name=k"]
    if op == "batch_norm":
        flags.append("--training")
    if op == "group_norm":
        flags.append(f"--groups={pc.GROUPS}")
    if layout == "nhwc":
        flags.append("--layout=nhwc")
    os.makedirs(kdir, exist_ok=True)
    path = os.path.join(kdir, f"{op}_{shape[2:]}_{layout or 'row'}_{dtype}.so")
    if not os.path.exists(path):
        subprocess.run([normc, *flags, "--emit=shared", "-o", path], check=True)
    return path


class Bundle:
    def __init__(self, path):
        self.lib = ctypes.CDLL(os.path.abspath(path))
        addr = ctypes.addressof(ctypes.c_char.in_dll(self.lib, "normc_manifest"))
        self.manifest = json.loads(ctypes.cast(addr, ctypes.c_char_p).value)
        self.kernels = {k["name"]: k for k in self.manifest["kernels"]}

    def run(self, name, tensors, phys):
        """tensors: name -> numpy array (inputs filled, outputs allocated here)."""
        k = self.kernels[name]
        dims = [0] * len(k["dims"])
        for a in k["args"]:
            if len(a["shape"]) == len(phys):
                for i, s in enumerate(a["shape"]):
                    if isinstance(s, str):
                        dims[k["dims"].index(s)] = phys[i]
        ptrs = []
        for a in k["args"]:
            shp = [dims[k["dims"].index(s)] if isinstance(s, str) else s
                   for s in a["shape"]]
            npdt = np.uint16 if a["dtype"] in ("bf16", "f16") else np.float32
            if a["io"] != "in" or a["name"] not in tensors:
                tensors[a["name"]] = np.zeros(shp, npdt)
            t = tensors[a["name"]]
            assert list(t.shape) == shp and t.dtype == npdt, (a, t.shape, t.dtype)
            ptrs.append(t.ctypes.data)
        c_dims = (ctypes.c_int64 * max(1, len(dims)))(*dims)
        # The call order of docs/runtime.md: workspace (backward kernels and
        # forward kernels with a prepass), prepass, work items, finalize.
        if "workspace" in k:
            ws_fn = getattr(self.lib, k["workspace"])
            ws_fn.restype = ctypes.c_int64
            ws = np.zeros(max(8, ws_fn(c_dims)), np.uint8)
            ptrs.append(ws.ctypes.data)
        c_args = (ctypes.c_void_p * len(ptrs))(*ptrs)

        def run_items(entry, work):
            work_fn = getattr(self.lib, work)
            work_fn.restype = ctypes.c_int64
            fn = getattr(self.lib, entry)
            fn.restype = ctypes.c_int32
            items = work_fn(c_dims)
            rc = fn(c_args, c_dims, ctypes.c_int64(0), ctypes.c_int64(items)) if items else 0
            if rc:
                raise RuntimeError(f"{name}: {entry} returned {rc}")

        if "prepass" in k:
            run_items(k["prepass"]["entry"], k["prepass"]["work"])
        run_items(k["entry"], k["work"])
        if "finalize" in k:
            fin = getattr(self.lib, k["finalize"])
            fin.restype = ctypes.c_int32
            rc = fin(c_args, c_dims)
            if rc:
                raise RuntimeError(f"{name} finalize returned {rc}")
        return k["attrs"]


def to_storage(a, dtype):
    return pc.f32_to_bf16_bits(a) if dtype == "bf16" else a.astype(np.float32)


def from_storage(a, dtype):
    return pc.bf16_bits_to_f32(a) if a.dtype == np.uint16 else a


def reference(op, x, w, b, dy, attrs, groups):
    """float64 torch reference in logical (N,C,...) layout; returns dict."""
    eps = attrs.get("eps", 1e-5)
    x = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
    w = torch.from_numpy(w.astype(np.float64)).requires_grad_(True)
    bt = torch.from_numpy(b.astype(np.float64)).requires_grad_(True)
    dy = torch.from_numpy(dy.astype(np.float64))
    out = {}
    if op == "layer_norm":
        m = x.mean(-1)
        v = ((x - m[..., None]) ** 2).mean(-1)
        r = 1 / torch.sqrt(v + eps)
        y = (x - m[..., None]) * r[..., None] * w + bt
        out["mean"], out["rstd"] = m, r
    elif op == "rms_norm":
        r = 1 / torch.sqrt((x * x).mean(-1) + eps)
        y = x * r[..., None] * w
        out["rstd"] = r
    else:
        n, c = x.shape[:2]
        if op == "batch_norm":
            red = [0, 2, 3]
            m = x.mean(red)
            v = ((x - m[None, :, None, None]) ** 2).mean(red)
            r = 1 / torch.sqrt(v + eps)
            y = (x - m[None, :, None, None]) * r[None, :, None, None]
            cnt = x.numel() // c
            mom = attrs.get("momentum", 0.1)
            out["running_mean_out"] = mom * m  # running_mean input = 0
            out["running_var_out"] = (1 - mom) + mom * v * cnt / (cnt - 1)
        else:
            g = c if op == "instance_norm" else groups
            xg = x.reshape(n, g, -1)
            m = xg.mean(-1)
            v = ((xg - m[..., None]) ** 2).mean(-1)
            r = 1 / torch.sqrt(v + eps)
            y = ((xg - m[..., None]) * r[..., None]).reshape(x.shape)
        y = y * w[None, :, None, None] + bt[None, :, None, None]
        out["mean"], out["rstd"] = m, r
    out["y"] = y
    grads = torch.autograd.grad(y, [x, w, bt], dy, allow_unused=True)
    out["dx"], out["dgamma"], out["dbeta"] = grads
    return {k: v.detach().numpy() for k, v in out.items() if v is not None}


def torch_native(op, x, w, b, dy, dtype, layout, attrs, groups):
    """PyTorch's own CPU result in the storage dtype (logical layout)."""
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    eps = attrs.get("eps", 1e-5)

    def t(a, cl=False):
        r = torch.from_numpy(a.astype(np.float32)).to(dt)
        if cl and layout == "nhwc":
            r = r.contiguous(memory_format=torch.channels_last)
        return r
    xt = t(x, True).requires_grad_(True)
    wt = t(w).requires_grad_(True)
    bt = t(b).requires_grad_(True)
    dyt = t(dy, True)
    if op == "layer_norm":
        y = F.layer_norm(xt, [x.shape[-1]], wt, bt, eps)
    elif op == "rms_norm":
        h = xt.float()
        y = wt * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(dt)
    elif op == "batch_norm":
        y = F.batch_norm(xt, torch.zeros(x.shape[1], dtype=dt),
                         torch.ones(x.shape[1], dtype=dt), wt, bt, True, 0.1, eps)
    elif op == "group_norm":
        y = F.group_norm(xt, groups, wt, bt, eps)
    else:
        y = F.instance_norm(xt, weight=wt, bias=bt, eps=eps)
    g = torch.autograd.grad(y, [xt, wt, bt], dyt, allow_unused=True)
    out = {"y": y, "dx": g[0], "dgamma": g[1], "dbeta": g[2]}
    return {k: v.detach().float().numpy() for k, v in out.items() if v is not None}


def err(a, ref, rtol, atol):
    a = np.asarray(a, np.float64)
    ref = np.asarray(ref, np.float64)
    if a.shape != ref.shape:
        return float("inf")
    if np.isnan(a).any() and not np.isnan(ref).any():
        return float("inf")
    return float(np.max(np.abs(a - ref) / (atol + rtol * np.abs(ref))))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--normc", default="build/bin/normc")
    ap.add_argument("--kernel-dir", default="build-bench/kernels-check")
    ap.add_argument("--json", default="")
    ap.add_argument("--big", action="store_true",
                    help="also LayerNorm/RMSNorm at 4096x4096")
    args = ap.parse_args()
    out = open(args.json, "a") if args.json else sys.stdout
    row_shapes = ["64x768", "256x4096", "8x65536"] + (["4096x4096"] if args.big else [])
    cases = []
    for op in ("layer_norm", "rms_norm"):
        for s in row_shapes:
            cases.append((op, s, ""))
    for op in ("batch_norm", "group_norm", "instance_norm"):
        for lay in ("nchw", "nhwc"):
            cases.append((op, pc.CHW_SHAPE, lay))
    worst = []
    for op, shape, layout in cases:
        for dtype in ("f32", "bf16"):
            logical = pc.parse_shape(shape)
            phys = logical if layout != "nhwc" else [logical[0], logical[2],
                                                     logical[3], logical[1]]
            path = compile_bundle(args.normc, args.kernel_dir, op, phys, layout,
                                  dtype)
            bundle = Bundle(path)
            c = logical[-1] if op in ("layer_norm", "rms_norm") else logical[1]
            x = pc.rand(logical, -1.0, 3.0, 1)
            w = pc.rand([c], 0.5, 1.5, 2)
            b = pc.rand([c], -0.5, 0.5, 3) if op != "rms_norm" else np.zeros(c, np.float32)
            dy = pc.rand(logical, -1.0, 1.0, 5)
            # round the inputs to the storage dtype so that every
            # implementation sees the same values
            x, w, b, dy = (from_storage(to_storage(a, dtype), dtype) for a in (x, w, b, dy))

            def phys_of(a):
                return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if layout == "nhwc" else a

            def logical_of(a):
                return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if layout == "nhwc" else a
            ft = {"x": to_storage(phys_of(x), dtype), "gamma": to_storage(w, dtype)}
            if op != "rms_norm":
                ft["beta"] = to_storage(b, dtype)
            if op == "batch_norm":
                # running statistics stay f32 whatever the storage dtype
                ft["running_mean"] = np.zeros(c, np.float32)
                ft["running_var"] = np.ones(c, np.float32)
            attrs = bundle.run("k", ft, phys)
            bt = {"dy": to_storage(phys_of(dy), dtype), "x": ft["x"],
                  "gamma": ft["gamma"], "rstd": ft["rstd"]}
            if "mean" in ft:
                bt["mean"] = ft["mean"]
            bundle.run("k_backward", bt, phys)
            ref = reference(op, x, w, b, dy, attrs, pc.GROUPS)
            tn = torch_native(op, x, w, b, dy, dtype, layout, attrs, pc.GROUPS)
            rtol, atol = TOL[dtype]
            rtol32, atol32 = TOL["f32"]
            got = {"y": logical_of(from_storage(ft["y"], dtype)),
                   "dx": logical_of(from_storage(bt["dx"], dtype)),
                   "dgamma": from_storage(bt["dgamma"], dtype)}
            if op != "rms_norm":
                got["dbeta"] = from_storage(bt["dbeta"], dtype)
            for s in ("mean", "rstd", "running_mean_out", "running_var_out"):
                if s in ft and s in ref:
                    got[s] = from_storage(ft[s], dtype).reshape(ref[s].shape)
            line = []
            for name, val in got.items():
                f32only = name in ("mean", "rstd")
                rt, at = (rtol32, atol32) if f32only else (rtol, atol)
                e = err(val, ref[name], rt, at)
                et = err(tn[name], ref[name], rt, at) if name in tn else None
                rec = dict(src="check", check="normc_vs_f64", op=op, shape=shape,
                           layout=layout, dtype=dtype, what=name, err=e,
                           torch_err=et, rtol=rt, atol=at, ok=e <= 1.0)
                out.write(json.dumps(rec) + "\n")
                line.append(f"{name} {e:.3g}" + (f" (torch {et:.3g})" if et is not None else "")
                            + ("" if e <= 1.0 else " FAIL"))
                if e > 1.0:
                    worst.append((op, shape, layout, dtype, name, e, et))
            print(f"{op} {shape} {layout or ''} {dtype}: " + ", ".join(line),
                  file=sys.stderr)
    out.flush()
    print(f"check: {len(worst)} outputs beyond assert_close tolerance", file=sys.stderr)
    for w_ in worst:
        print("  FAIL", *w_, file=sys.stderr)


if __name__ == "__main__":
    main()
