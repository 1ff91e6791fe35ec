"""Shared timing protocol for the Python peer benchmarks (see normc_bench.cpp
and shared/docs/benchmarking.md).

Every peer script times its implementation against a copy of the same ideal
bytes made with numpy in the same process, on the same number of pinned
threads: copy of ideal/2 bytes (read + write = ideal bytes). Protocol:
warm-up >= 0.3 s and >= 3 calls for the first implementation of a case,
>= 0.1 s for the others; one untimed call, then `calls` samples per round,
`rounds` rounds interleaving the implementations; median of all samples; a
sample averages back-to-back calls when one call is shorter than 1 ms.

Output: one JSON object per line (same fields as normc_bench), appended to
--json FILE or printed on stdout; a readable line per result on stderr.
"""

import argparse
import json
import math
import os
import sys
import threading
import time

import numpy as np

ROW_SHAPES = ["64x768", "4096x4096", "16384x1024", "16384x4096", "8x65536"]
QUICK_ROW_SHAPES = ["4096x4096", "16384x4096"]
CHW_SHAPE = "32x64x56x56"
ALL_OPS = ["layer_norm", "rms_norm", "batch_norm", "group_norm",
           "instance_norm"]
GROUPS = 32


def parse_shape(s):
    return [int(v) for v in s.split("x")]


def ideal_bytes(op, shape, dtype, direction):
    """Bytes of every tensor of normc's signature for this kernel."""
    es = 2 if dtype == "bf16" else 4
    n = math.prod(shape)
    if op in ("layer_norm", "rms_norm"):
        c, stats = shape[-1], n // shape[-1]
    else:
        c = shape[1]
        stats = {"batch_norm": c, "instance_norm": shape[0] * c,
                 "group_norm": shape[0] * GROUPS}[op]
    nstat = 1 if op == "rms_norm" else 2  # rstd (+ mean)
    nparam = 1 if op == "rms_norm" else 2  # gamma (+ beta)
    if direction == "fwd":
        b = 2 * n * es + nparam * c * es + nstat * stats * 4
        if op == "batch_norm":  # running mean/var in and out
            b += 4 * c * 4
    else:
        b = 3 * n * es + c * es + nstat * stats * 4 + nparam * c * es
    return b


def common_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ops", default=",".join(ALL_OPS))
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--dirs", default="fwd,bwd")
    ap.add_argument("--shapes", default=",".join(ROW_SHAPES),
                    help="LayerNorm/RMSNorm shapes")
    ap.add_argument("--layouts", default="nchw,nhwc")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=7)
    ap.add_argument("--json", default="")
    return ap


def finish_args(args):
    args.ops = args.ops.split(",")
    args.dtypes = args.dtypes.split(",")
    args.dirs = args.dirs.split(",")
    args.shapes = QUICK_ROW_SHAPES if args.quick else args.shapes.split(",")
    args.layouts = args.layouts.split(",")
    return args


def cases(args, ops=None, layouts=True):
    """(op, shape string, layout, dtype, dir) tuples."""
    for op in args.ops:
        if ops is not None and op not in ops:
            continue
        rows = op in ("layer_norm", "rms_norm")
        shapes = args.shapes if rows else [CHW_SHAPE]
        lays = [""] if rows else (args.layouts if layouts else ["nchw"])
        for shape in shapes:
            for layout in lays:
                for dtype in args.dtypes:
                    for d in args.dirs:
                        yield op, shape, layout, dtype, d


def cpus():
    env = os.environ.get("NORMC_BENCH_CPUS")
    if env:
        return [int(c) for c in env.split(",")]
    return sorted(os.sched_getaffinity(0))


def aligned_empty(nbytes, align=4096):
    """uint8 array of nbytes starting on an `align` boundary."""
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + nbytes]


class Copier:
    """numpy copy of `nbytes` split over `threads` pinned Python threads
    (numpy releases the GIL while copying large arrays)."""

    def __init__(self, nbytes, threads):
        # Page-aligned source and destination, like normc_bench's buffers.
        # Where dst - src is a small non-zero amount mod 4096 (what two
        # malloc'ed arrays get under MALLOC_MMAP_MAX_=0), 4K aliasing makes
        # a copy ~4x slower on this machine: the yardstick would be wrong.
        self.src = aligned_empty(max(nbytes, 64))
        self.src.view(np.uint8)[:] = 1
        self.dst = aligned_empty(max(nbytes, 64))
        self.dst[:] = 0
        n = self.src.size
        # Below 8 MiB, waking Python threads costs more than the copy: copy
        # on one thread (the faster yardstick, so the stricter one).
        t = max(1, threads) if nbytes >= (8 << 20) else 1
        bounds = [(n * i // t) // 64 * 64 for i in range(t)] + [n]
        self.parts = [(self.src[bounds[i]:bounds[i + 1]],
                       self.dst[bounds[i]:bounds[i + 1]]) for i in range(t)]
        self.threads = []
        self.barrier = threading.Barrier(t) if t > 1 else None
        self.done = threading.Barrier(t) if t > 1 else None
        self.stop = False
        cpu = cpus()
        for i in range(1, t):
            th = threading.Thread(target=self._worker, args=(i, cpu[i % len(cpu)]),
                                  daemon=True)
            th.start()
            self.threads.append(th)

    def _worker(self, i, cpu):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
        s, d = self.parts[i]
        while True:
            self.barrier.wait()
            if self.stop:
                return
            np.copyto(d, s)
            self.done.wait()

    def __call__(self):
        if self.barrier is None:
            np.copyto(self.dst, self.src)
            return
        self.barrier.wait()
        s, d = self.parts[0]
        np.copyto(d, s)
        self.done.wait()

    def close(self):
        if self.barrier is not None:
            self.stop = True
            self.barrier.wait()
            for th in self.threads:
                th.join()


def _warm(fn, seconds):
    """>= `seconds` and >= 3 calls, or >= 1 s; returns the last call's time."""
    t0 = time.perf_counter()
    n = 0
    while True:
        a = time.perf_counter()
        fn()
        last = time.perf_counter() - a
        n += 1
        el = time.perf_counter() - t0
        if (n >= 3 and el >= seconds) or el >= 1.0 or n > 100000:
            return last


def measure(impls, rounds=3, calls=7, min_sample=1e-3):
    """impls: list of (name, fn). Returns ({name: median s}, {name: samples})."""
    reps, last = {}, {}
    first = True
    for name, fn in impls:
        t = _warm(fn, 0.3 if first else 0.1)
        first = False
        last[name] = t
        reps[name] = 1 if t >= min_sample else int(math.ceil(min_sample / max(t, 1e-7)))
    samples = {name: [] for name, _ in impls}
    for _ in range(rounds):
        for name, fn in impls:
            if last[name] < 20e-3:
                fn()  # untimed: caches and threads in this impl's state
            r = reps[name]
            for _ in range(calls):
                t0 = time.perf_counter()
                for _ in range(r):
                    fn()
                samples[name].append((time.perf_counter() - t0) / r)
            time.sleep(0.003)
    return {name: float(np.median(v)) for name, v in samples.items()}, \
        {name: len(v) for name, v in samples.items()}


class Reporter:
    def __init__(self, args, src):
        self.src = src
        self.threads = args.threads
        self.out = open(args.json, "a") if args.json else sys.stdout

    def emit(self, impl, op, shape, layout, dtype, d, nbytes, sec, copy_sec,
             samples=0, note=""):
        rec = dict(src=self.src, impl=impl, op=op, shape=shape, layout=layout,
                   dtype=dtype, dir=d, threads=self.threads, bytes=nbytes,
                   sec=sec, copy_sec=copy_sec,
                   gbps=(nbytes / sec / 1e9) if sec and sec == sec else None,
                   frac=(copy_sec / sec) if sec and sec == sec else None,
                   samples=samples, note=note)
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()
        if sec and sec == sec:
            print(f"  {impl:<14} T={self.threads} {sec * 1e3:9.3f} ms "
                  f"{rec['gbps']:7.2f} GB/s  {rec['frac']:5.2f} of copy  {note}",
                  file=sys.stderr)
        else:
            print(f"  {impl:<14} T={self.threads} unavailable: {note}",
                  file=sys.stderr)

    def unavailable(self, impl, op, shape, layout, dtype, d, note):
        self.emit(impl, op, shape, layout, dtype, d,
                  ideal_bytes(op, parse_shape(shape), dtype, d), None, None,
                  note=note)

    def check(self, impl, op, shape, layout, dtype, d, what, max_abs, max_ref):
        rec = dict(src=self.src, check=impl, op=op, shape=shape, layout=layout,
                   dtype=dtype, dir=d, what=what, max_abs_diff=max_abs,
                   max_abs_ref=max_ref)
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()


def run_case(rep, args, impl, op, shape, layout, dtype, d, fn, note=""):
    """Times fn against the copy of the same ideal bytes and emits one row."""
    nbytes = ideal_bytes(op, parse_shape(shape), dtype, d)
    copier = Copier(nbytes // 2, args.threads)
    try:
        med, cnt = measure([("copy", copier), (impl, fn)], args.rounds,
                           args.calls)
    finally:
        copier.close()
    rep.emit(impl, op, shape, layout, dtype, d, nbytes, med[impl], med["copy"],
             cnt[impl], note)
    return med


def header(op, shape, layout, dtype, d):
    print(f"== {op} {shape}{' ' + layout if layout else ''} {dtype} {d}",
          file=sys.stderr)


def rand(shape, lo, hi, seed):
    rng = np.random.default_rng(seed)
    return (lo + (hi - lo) * rng.random(shape, dtype=np.float32)).astype(np.float32)


def f32_to_bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)
