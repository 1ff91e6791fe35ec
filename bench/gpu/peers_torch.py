#!/usr/bin/env python3
"""PyTorch peers of normc_gpu_check bench, on the GPU.

Times torch.nn.functional.layer_norm / rms_norm (and batch_norm, group_norm,
instance_norm) forward and backward (autograd: dx, dgamma, dbeta), eager and
through torch.compile, on the shapes and dtypes of `normc_gpu_check bench`,
with CUDA events, against a device-to-device copy of the same bytes timed in
the same process. One JSON object per line, with the fields of
normc_gpu_check's rows (impl "torch" or "torch.compile").

Protocol (the same as normc_gpu_check bench): warm-up calls (they also
compile), then --rounds rounds of --samples copy samples followed by
--samples samples of the implementation; each sample is one call between two
CUDA events, after a GPU spin (torch.cuda._sleep) that keeps the GPU busy
while Python enqueues the call, so that launch overhead is not timed; median
of all samples. Backward samples time torch.autograd.grad(y, [x, w, b], dy)
only: the forward that builds the graph runs before the spin, untimed.

Ideal bytes are normc's kernel signature (anchors.md): forward = x + gamma
(+ beta) + y + saved mean/rstd (+ running stats in and out for BatchNorm),
backward = dy + x + gamma + mean/rstd + dx + dgamma (+ dbeta). PyTorch may
move more (or, compiled for inference, skip the statistics); the byte count
is the same for every implementation of a row.

usage: python3 peers_torch.py [--json FILE] [--ops ...] [--impls ...]
"""

import argparse
import json
import math
import sys
import time
import traceback

ROW_SHAPES = ["16384x4096", "4096x8192"]
CHW_SHAPES = ["32x64x56x56"]
ROW_OPS = ["layer_norm", "rms_norm"]
CHW_OPS = ["batch_norm", "group_norm", "instance_norm"]
GROUPS = 32
EPS = 1e-5


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default="", help="append JSON lines here "
                    "(default stdout)")
    ap.add_argument("--ops", default=",".join(ROW_OPS + CHW_OPS))
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--dirs", default="fwd,bwd")
    ap.add_argument("--impls", default="torch,torch.compile")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--spin-us", type=float, default=100.0)
    ap.add_argument("--row-shapes", default=",".join(ROW_SHAPES),
                    help="LayerNorm/RMSNorm shapes")
    ap.add_argument("--chw-shapes", default=",".join(CHW_SHAPES),
                    help="BatchNorm/GroupNorm/InstanceNorm shapes (NCHW)")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: a smoke test of this script (host clock, "
                    "no spin)")
    ap.add_argument("--compile-budget-s", type=float, default=240.0,
                    help="stop compiling new variants after this many "
                    "seconds spent in torch.compile cases (their rows say "
                    "so); 0: no limit")
    return ap.parse_args()


def ideal_bytes(op, shape, dtype, d):
    """Bytes of every tensor of normc's kernel signature (as
    normc_gpu_check counts them from the manifest)."""
    es = 2 if dtype == "bf16" else 4
    n = math.prod(shape)
    if op in ROW_OPS:
        c, stats = shape[-1], n // shape[-1]
    else:
        c = shape[1]
        stats = {"batch_norm": c, "instance_norm": shape[0] * c,
                 "group_norm": shape[0] * GROUPS}[op]
    nstat = 1 if op == "rms_norm" else 2  # rstd (+ mean)
    nparam = 1 if op == "rms_norm" else 2  # gamma (+ beta)
    if d == "fwd":
        b = 2 * n * es + nparam * c * es + nstat * stats * 4
        if op == "batch_norm":  # running mean/var in and out, f32
            b += 4 * c * 4
    else:
        b = 3 * n * es + c * es + nstat * stats * 4 + nparam * c * es
    return b


class Bench:
    def __init__(self, args, torch):
        self.args = args
        self.torch = torch
        self.cuda = args.device == "cuda"
        self.out = open(args.json, "a") if args.json else sys.stdout
        self.device_name = torch.cuda.get_device_name(0) if self.cuda \
            else "cpu"
        self.sleep = getattr(torch.cuda, "_sleep", None) if self.cuda \
            else None
        # torch.cuda._sleep counts clock cycles: ~2 GHz on an H100/H200
        # (a lower clock only makes the spin longer).
        self.spin_cycles = int(args.spin_us * 1e-6 * 2.0e9)
        n = args.samples if self.cuda else 0
        self.starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        self.ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def write(self, rec):
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()

    def meta(self, extra):
        t = self.torch
        p = t.cuda.get_device_properties(0) if self.cuda else None
        try:
            import triton
            triton_version = triton.__version__
        except Exception:  # noqa: BLE001
            triton_version = None
        m = dict(src="peers_torch", device=self.device_name,
                 torch=t.__version__, cuda=t.version.cuda,
                 triton=triton_version,
                 sms=p.multi_processor_count if p else None,
                 total_memory=p.total_memory if p else None,
                 l2_bytes=getattr(p, "L2_cache_size", None),
                 spin_us=self.args.spin_us if self.sleep else 0,
                 rounds=self.args.rounds,
                 samples_per_round=self.args.samples,
                 warmup=self.args.warmup)
        m.update(extra)
        self.write({"meta": m})

    def time(self, fn, pre=None):
        """Times `samples` calls of fn; `pre` runs untimed before each."""
        t = self.torch
        out = []
        if not self.cuda:
            for i in range(self.args.samples):
                if pre is not None:
                    pre()
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
            return out
        stream = t.cuda.current_stream()
        for i in range(self.args.samples):
            if pre is not None:
                pre()
            if self.sleep is not None and self.spin_cycles > 0:
                self.sleep(self.spin_cycles)
            self.starts[i].record(stream)
            fn()
            self.ends[i].record(stream)
        t.cuda.synchronize()
        for i in range(self.args.samples):
            out.append(self.starts[i].elapsed_time(self.ends[i]) * 1e-3)
        return out

    def measure(self, fn, pre, nbytes):
        """Median seconds of fn and of a copy of nbytes/2 bytes, interleaved
        in rounds."""
        t = self.torch
        half = nbytes // 2
        src = t.empty(half, dtype=t.uint8, device=self.args.device).fill_(60)
        dst = t.empty_like(src)

        def copy():
            dst.copy_(src)

        for _ in range(self.args.warmup):
            copy()
            if pre is not None:
                pre()
            fn()
        self.sync()
        cs, ks = [], []
        for _ in range(self.args.rounds):
            cs += self.time(copy)
            ks += self.time(fn, pre)
        del src, dst
        return median(ks), median(cs), len(ks)

    def emit(self, impl, op, shape, layout, dtype, d, nbytes, sec, copy_sec,
             samples=0, note=""):
        ok = sec is not None and sec == sec and sec > 0
        rec = dict(src="peers_torch", impl=impl, op=op, shape=shape,
                   layout=layout, dtype=dtype, dir=d, device=self.device_name,
                   bytes=nbytes, sec=sec if ok else None,
                   copy_sec=copy_sec if ok else None,
                   gbps=nbytes / sec / 1e9 if ok else None,
                   copy_gbps=nbytes / copy_sec / 1e9 if ok else None,
                   frac=copy_sec / sec if ok else None, samples=samples,
                   timing="events" if self.cuda else "host", note=note)
        self.write(rec)
        if ok:
            print(f"  {impl:<14} {sec * 1e6:9.1f} us {rec['gbps']:8.1f} GB/s "
                  f" {rec['frac']:.2f} of copy  {note}", file=sys.stderr)
        else:
            print(f"  {impl:<14} unavailable: {note}", file=sys.stderr)


def median(v):
    v = sorted(v)
    n = len(v)
    if not n:
        return float("nan")
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def make_fn(torch, F, op, c):
    """The PyTorch function of `op` and a note on what it is."""
    if op == "layer_norm":
        return (lambda x, w, b: F.layer_norm(x, (c,), w, b, EPS)), \
            "F.layer_norm"
    if op == "rms_norm":
        if hasattr(F, "rms_norm"):
            return (lambda x, w, b: F.rms_norm(x, (c,), w, EPS)), "F.rms_norm"

        def composite(x, w, b):
            h = x.to(torch.float32)
            h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + EPS)
            return w * h.to(x.dtype)
        return composite, "composite (no F.rms_norm)"
    if op == "group_norm":
        return (lambda x, w, b: F.group_norm(x, GROUPS, w, b, EPS)), \
            f"F.group_norm G={GROUPS}"
    if op == "instance_norm":
        return (lambda x, w, b: F.instance_norm(x, weight=w, bias=b,
                                                eps=EPS)), "F.instance_norm"
    raise ValueError(op)


def run_case(bench, torch, F, impl, op, shape_text, dtype, d):
    shape = [int(v) for v in shape_text.split("x")]
    layout = "" if op in ROW_OPS else "nchw"
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    nbytes = ideal_bytes(op, shape, dtype, d)
    c = shape[-1] if op in ROW_OPS else shape[1]
    dev = bench.args.device
    gen = torch.Generator(device=dev)
    gen.manual_seed(1)

    def uniform(size, lo, hi):
        t = torch.empty(size, dtype=torch.float32, device=dev)
        t.uniform_(lo, hi, generator=gen)
        return t.to(dt)

    x = uniform(shape, -1.0, 3.0)
    w = uniform([c], 0.5, 1.5)
    b = uniform([c], -0.5, 0.5)
    dy = uniform(shape, -1.0, 1.0) if d == "bwd" else None
    if op == "batch_norm":
        # Running statistics in the input's dtype (PyTorch's CUDA kernels
        # want them to match the weight's).
        rm = torch.zeros(c, dtype=dt, device=dev)
        rv = torch.ones(c, dtype=dt, device=dev)

        def fn(x, w, b):
            return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1,
                                eps=EPS)
        note = "F.batch_norm training"
    else:
        fn, note = make_fn(torch, F, op, c)
    params = [w] if op == "rms_norm" else [w, b]  # rms_norm ignores b
    call = fn
    if impl == "torch.compile":
        torch._dynamo.reset()
        call = torch.compile(call, dynamic=False)
        note += ", torch.compile(dynamic=False)"
    if d == "fwd":
        def run():
            with torch.no_grad():
                call(x, w, b)
        sec, copy_sec, n = bench.measure(run, None, nbytes)
    else:
        xr = x.detach().requires_grad_(True)
        wr = w.detach().requires_grad_(True)
        br = b.detach().requires_grad_(True)
        leaves = [xr, wr] + ([br] if len(params) == 2 else [])
        state = {}

        def forward():
            state["y"] = call(xr, wr, br)

        def backward():
            torch.autograd.grad(state["y"], leaves, dy)
        sec, copy_sec, n = bench.measure(backward, forward, nbytes)
        state.clear()
        note += ", autograd.grad (dx, dgamma" + \
            (", dbeta)" if len(params) == 2 else ")")
    bench.emit(impl, op, shape_text, layout, dtype, d, nbytes, sec, copy_sec,
               n, note)


def main():
    args = parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001
        print(f"peers_torch.py: cannot import torch: {e}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("peers_torch.py: no CUDA device visible to PyTorch "
              f"(torch {torch.__version__}, CUDA {torch.version.cuda})",
              file=sys.stderr)
        return 2
    bench = Bench(args, torch)
    bench.meta({"rms_norm": "F.rms_norm" if hasattr(F, "rms_norm")
                else "composite"})
    ops = [o for o in args.ops.split(",") if o]
    dtypes = [t for t in args.dtypes.split(",") if t]
    dirs = [d for d in args.dirs.split(",") if d]
    impls = [i for i in args.impls.split(",") if i]
    compile_spent = 0.0
    failures = 0
    for op in ROW_OPS + CHW_OPS:
        if op not in ops:
            continue
        shapes = args.row_shapes if op in ROW_OPS else args.chw_shapes
        for shape in [v for v in shapes.split(",") if v]:
            for dtype in dtypes:
                for d in dirs:
                    print(f"== {op} {shape} {dtype} {d}", file=sys.stderr)
                    for impl in impls:
                        layout = "" if op in ROW_OPS else "nchw"
                        nbytes = ideal_bytes(
                            op, [int(v) for v in shape.split("x")], dtype, d)
                        if (impl == "torch.compile" and args.compile_budget_s
                                and compile_spent > args.compile_budget_s):
                            bench.emit(impl, op, shape, layout, dtype, d,
                                       nbytes, None, None, 0,
                                       "skipped: --compile-budget-s "
                                       f"{args.compile_budget_s:g} spent")
                            continue
                        t0 = time.time()
                        try:
                            run_case(bench, torch, F, impl, op, shape, dtype, d)
                        except Exception as e:  # noqa: BLE001
                            failures += 1
                            msg = (str(e).strip().splitlines() or [repr(e)])[0]
                            bench.emit(impl, op, shape, layout, dtype, d,
                                       nbytes, None, None, 0,
                                       f"{type(e).__name__}: {msg[:300]}")
                            traceback.print_exc(limit=3)
                        finally:
                            if impl == "torch.compile":
                                compile_spent += time.time() - t0
                            if bench.cuda:
                                torch.cuda.synchronize()
                                torch.cuda.empty_cache()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
