#!/usr/bin/env python3
"""Merges the GPU kit's results into one markdown report.

usage: report.py --normc normc.jsonl [--torch torch.jsonl] [--check check.log]
                 [--kit-info KIT_INFO.json] [--machine machine.txt] -o report.md

Inputs are the JSON lines of `normc_gpu_check bench` and peers_torch.py
(rows: op, shape, layout, dtype, dir, impl, bytes, sec, copy_sec; plus one
{"meta": ...} line each) and the text output of `normc_gpu_check check`.
Machine information comes from nvidia-smi when it is there (else from the
meta lines). Missing inputs leave their columns empty ("—").

Numbers per row:
  GB/s     ideal bytes / median time (ideal bytes: normc's kernel signature,
           anchors.md)
  /copy    copy time / kernel time, the copy of the same bytes (device to
           device, ideal/2 read + ideal/2 written) timed in the same process
           and run, interleaved with the kernel: 1.00 = copy speed
  target   the issue's target on an H100: forward >= 0.85 of copy,
           backward >= 0.75, for rows of 1024 elements and longer (LayerNorm,
           RMSNorm); other rows have none
  ÷ best   normc /copy divided by the best PyTorch variant's /copy (eager or
           torch.compile; > 1: normc is faster). Each process's own copy is
           the yardstick, so runs of the two programs compare fairly.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

OP_NAME = {"layer_norm": "LayerNorm", "rms_norm": "RMSNorm",
           "batch_norm": "BatchNorm (train)", "group_norm": "GroupNorm (G=32)",
           "instance_norm": "InstanceNorm"}
OP_ORDER = list(OP_NAME)
SHAPE_ORDER = ["16384x4096", "4096x8192", "32x64x56x56"]
TARGET = {"fwd": 0.85, "bwd": 0.75}
TORCH_IMPLS = ["torch", "torch.compile"]


def load_jsonl(path):
    rows, metas = [], []
    if not path or not os.path.exists(path):
        return rows, metas
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "meta" in r:
                metas.append(r["meta"])
            elif "impl" in r:
                rows.append(r)
    return rows, metas


def key(r):
    return (r["op"], r["shape"], r.get("layout") or "", r["dtype"], r["dir"])


def sort_key(k):
    op, shape, layout, dtype, d = k
    return (OP_ORDER.index(op) if op in OP_ORDER else 99,
            SHAPE_ORDER.index(shape) if shape in SHAPE_ORDER else 99,
            layout, dtype != "f32", d != "fwd")


def has_target(op, shape):
    if op not in ("layer_norm", "rms_norm"):
        return False
    return int(shape.split("x")[-1]) >= 1024


def fmt(v, digits=2):
    if v is None or v != v:
        return "—"
    return f"{v:.{digits}f}"


def nvidia_smi():
    fields = "name,driver_version,memory.total,clocks.max.sm,clocks.max.memory"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return [dict(zip(fields.split(","), (v.strip() for v in line.split(","))))
            for line in out.stdout.strip().splitlines()]


def parse_check(path):
    """(passed, failed, failed-kernel lines, worst-tolerance lines)."""
    if not path or not os.path.exists(path):
        return None
    passed = failed = None
    failed_kernels, worst, bundles = [], [], []
    section = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^(\d+) passed, (\d+) failed$", line)
            if m:
                passed, failed = int(m.group(1)), int(m.group(2))
                continue
            if (line.startswith("bundle ") or line.startswith("FAIL bundle ")
                    or "cases not run: --time-limit" in line):
                bundles.append(line)
            if line.startswith("failed kernels"):
                section = "failed"
                continue
            if line.startswith("worst fraction"):
                section = "worst"
                continue
            if not line.startswith("  "):
                section = None
                continue
            if section == "failed":
                failed_kernels.append(line.strip())
            elif section == "worst":
                worst.append(line.strip())
    return dict(passed=passed, failed=failed, failed_kernels=failed_kernels,
                worst=worst, bundles=bundles)


def main():
    ap = argparse.ArgumentParser(description="GPU kit report")
    ap.add_argument("--normc", default="")
    ap.add_argument("--torch", default="")
    ap.add_argument("--check", default="")
    ap.add_argument("--kit-info", default="")
    ap.add_argument("--machine", default="",
                    help="a file with nvidia-smi's output, quoted as is")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    nrows, nmeta = load_jsonl(args.normc)
    trows, tmeta = load_jsonl(args.torch)
    by = {}
    for r in nrows + trows:  # later rows win (appended reruns)
        by.setdefault(key(r), {})[r["impl"]] = r
    keys = sorted(by, key=sort_key)

    lines = ["# normc on the GPU: device check and bandwidth", ""]
    lines.append(f"Generated by bench/gpu/report.py on "
                 f"{time.strftime('%Y-%m-%d %H:%M')}.")
    lines.append("")

    # Machine.
    lines += ["## Machine", ""]
    smi = nvidia_smi()
    if smi:
        for g in smi:
            lines.append(f"- GPU: {g.get('name')}, driver "
                         f"{g.get('driver_version')}, "
                         f"{g.get('memory.total')}, max clocks SM "
                         f"{g.get('clocks.max.sm')} / memory "
                         f"{g.get('clocks.max.memory')}")
    elif nmeta or tmeta:
        name = (nmeta or tmeta)[0].get("device")
        lines.append(f"- GPU: {name} (nvidia-smi not available)")
    else:
        lines.append("- GPU: unknown (no nvidia-smi, no results)")
    if nmeta:
        m = nmeta[-1]
        drv = m.get("cuda_driver_version") or 0
        lines.append(f"- normc_gpu_check: compute capability "
                     f"{m.get('compute_capability')}, {m.get('sms')} SMs, "
                     f"L2 {int(m.get('l2_bytes') or 0) / 2**20:.0f} MiB, "
                     f"peak memory bandwidth "
                     f"{fmt(m.get('peak_gbps'), 0)} GB/s (from clock x bus), "
                     f"CUDA driver API {drv // 1000}.{(drv % 1000) // 10}; "
                     f"timing: {m.get('timing')}, spin {m.get('spin_us')} us, "
                     f"{m.get('rounds')} rounds x {m.get('samples_per_round')} "
                     f"samples, median")
    if tmeta:
        m = tmeta[-1]
        lines.append(f"- PyTorch {m.get('torch')} (CUDA {m.get('cuda')}, "
                     f"Triton {m.get('triton')}); RMSNorm: "
                     f"{m.get('rms_norm')}")
    if args.kit_info and os.path.exists(args.kit_info):
        try:
            with open(args.kit_info) as f:
                k = json.load(f)
            lines.append(f"- kit: normc commit {k.get('commit')}, built "
                         f"{k.get('date')} on {k.get('host')}, archs "
                         f"{k.get('gpu_archs')}, {k.get('normc')}")
        except (OSError, ValueError):
            pass
    if args.machine and os.path.exists(args.machine):
        with open(args.machine, errors="replace") as f:
            text = f.read().strip()
        if text:
            lines += ["", "<details><summary>nvidia-smi</summary>", "",
                      "```", text, "```", "", "</details>"]
    lines.append("")

    # Correctness.
    lines += ["## Correctness (normc_gpu_check check)", ""]
    chk = parse_check(args.check)
    if chk is None:
        lines.append("No check output.")
    elif chk["passed"] is None:
        lines.append("The check did not finish (no summary line): see "
                     "check.log.")
    else:
        verdict = "all passed" if chk["failed"] == 0 else "FAILURES"
        lines.append(f"**{chk['passed']} passed, {chk['failed']} failed** "
                     f"({verdict}): every kit kernel, forward and backward, "
                     "f32/f16/bf16, on the test plan's sizes plus GPU-sized "
                     "ones, random and adversarial data, against the float64 "
                     "reference with torch.testing's default tolerances.")
    if chk:
        if chk["bundles"]:
            lines += [""] + [f"- {b}" for b in chk["bundles"]]
        if chk["failed_kernels"]:
            lines += ["", "Failed kernels (cases, first reason):", ""]
            lines += [f"- {s}" for s in chk["failed_kernels"][:60]]
            if len(chk["failed_kernels"]) > 60:
                lines.append(f"- ... {len(chk['failed_kernels']) - 60} more")
        if chk["worst"]:
            lines += ["", "Worst fraction of the tolerance used:", "", "```"]
            lines += chk["worst"] + ["```"]
    lines.append("")

    # Bandwidth.
    lines += ["## Bandwidth (normc_gpu_check bench, peers_torch.py)", ""]
    lines += [
        "GB/s = ideal bytes / median time; /copy = time of a device-to-device "
        "copy of the same bytes, timed in the same run / kernel time "
        "(1.00 = copy speed); target (H100): forward >= 0.85, backward "
        ">= 0.75 of copy for rows >= 1024; ÷ best = normc /copy over the "
        "best PyTorch variant's /copy.", ""]
    head = ("| kernel | shape | dtype | dir | MB | copy GB/s | normc GB/s | "
            "normc /copy | target | met | torch GB/s | torch /copy | "
            "compile GB/s | compile /copy | ÷ best |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    met = total = 0
    notes = []
    for k in keys:
        op, shape, layout, dtype, d = k
        impls = by[k]
        n = impls.get("normc")
        nbytes = next((r.get("bytes") for r in ([n] if n else []) +
                       list(impls.values()) if r.get("bytes")), 0)
        for t in impls.values():
            if t.get("bytes") and nbytes and t["bytes"] != nbytes:
                notes.append(f"{op} {shape} {dtype} {d}: {t['impl']} counted "
                             f"{t['bytes']} bytes, normc {nbytes}")
        nf = n.get("frac") if n else None
        copy_gbps = n.get("copy_gbps") if n else None
        if copy_gbps is None:
            copy_gbps = next((t.get("copy_gbps") for t in impls.values()
                              if t.get("copy_gbps")), None)
        target = TARGET[d] if has_target(op, shape) else None
        ok = None
        if target is not None:
            total += 1
            if nf is not None:
                ok = nf >= target
                met += ok
        fracs = [impls[i].get("frac") for i in TORCH_IMPLS
                 if i in impls and impls[i].get("frac")]
        best = max(fracs) if fracs else None
        ratio = nf / best if nf and best else None
        cells = [OP_NAME.get(op, op) + (f" {layout}" if layout else ""), shape,
                 dtype, d, fmt(nbytes / 1e6, 0), fmt(copy_gbps, 0),
                 fmt(n.get("gbps") if n else None, 0), fmt(nf, 3),
                 fmt(target) if target else "—",
                 "—" if ok is None else ("yes" if ok else "**no**")]
        for i in TORCH_IMPLS:
            t = impls.get(i)
            cells += [fmt(t.get("gbps") if t else None, 0),
                      fmt(t.get("frac") if t else None)]
        cells.append(fmt(ratio))
        lines.append("| " + " | ".join(cells) + " |")
        for i in ["normc"] + TORCH_IMPLS:
            t = impls.get(i)
            if t and t.get("sec") is None and t.get("note"):
                notes.append(f"{op} {shape} {dtype} {d} {i}: {t['note']}")
    if not keys:
        lines.append("| (no results) |" + " |" * (head.count("|") - 2))
    lines.append("")
    lines.append(f"Targets met: **{met} of {total}** "
                 "(LayerNorm/RMSNorm rows, normc /copy against 0.85 forward, "
                 "0.75 backward).")
    if notes:
        lines += ["", "Notes:", ""] + [f"- {s}" for s in notes]
    lines.append("")

    with open(args.output, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
