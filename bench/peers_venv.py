#!/usr/bin/env python3
"""Peers installed from PyPI into the bench venv (bench/install_peers.sh):

  --peer=onnxruntime  LayerNormalization (opset 17) and
                      SimplifiedLayerNormalization (ORT's RMSNorm), forward
                      only (the pip package has no training ops); outputs
                      bound once with IOBinding; intra-op threads = T,
                      the extra thread pinned.
  --peer=halide       LayerNorm and RMSNorm forward, JIT, schedule: rows in
                      parallel, per-row two-pass statistics in vector
                      partial sums computed at the row (the row stays in
                      L1/L2), vectorized output; HL_NUM_THREADS = T. Writes
                      y only (the saved statistics are < 0.1% of the bytes).
  --peer=jax          jax.jit of LN/RMSNorm forward (y, mean, rstd) and of the
                      vjp (dx, dgamma, dbeta: XLA recomputes the statistics
                      from x, as a JAX user's grad does); XLA CPU threads = T.
  --peer=iree         the same JAX functions lowered to StableHLO (IREE's
                      input dialect) and compiled by iree-base-compiler for
                      llvm-cpu (host CPU); local-sync driver for T = 1,
                      local-task pinned to CPUs 0..T-1 otherwise.

All: LayerNorm/RMSNorm rows only, f32 and bf16 (where the peer takes it),
timed against a numpy copy of the same ideal bytes in the same process.
Run each peer in its own process per thread count (bench/run_all.sh does,
under taskset).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pre_import_env(peer, threads):
    # Thread pools read these when the library loads.
    if peer == "halide":
        os.environ["HL_NUM_THREADS"] = str(threads)
    if peer in ("jax", "iree"):
        flags = os.environ.get("XLA_FLAGS", "")
        if threads == 1:
            flags += (" --xla_cpu_multi_thread_eigen=false"
                      " intra_op_parallelism_threads=1")
        os.environ["XLA_FLAGS"] = flags.strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _argv_value(name, default):
    for i, a in enumerate(sys.argv):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return default


pre_import_env(_argv_value("--peer", ""), int(_argv_value("--threads", "1")))

import numpy as np  # noqa: E402
import peers_common as pc  # noqa: E402

EPS_LN = 1e-5
EPS_RMS = float(np.finfo(np.float32).eps)


def inputs(shape, dtype):
    """x, gamma, beta, dy as float32 arrays and the bf16 bit patterns."""
    x = pc.rand(shape, -1.0, 3.0, 1)
    g = pc.rand([shape[-1]], 0.5, 1.5, 2)
    b = pc.rand([shape[-1]], -0.5, 0.5, 3)
    dy = pc.rand(shape, -1.0, 1.0, 5)
    if dtype == "bf16":
        # values exactly representable in bf16, so f32 references agree
        x, g, b, dy = (pc.bf16_bits_to_f32(pc.f32_to_bf16_bits(a))
                       for a in (x, g, b, dy))
    return x, g, b, dy


# ---------------------------------------------------------------- ORT ---

def ort_peer(args, rep):
    import onnx
    from onnx import TensorProto, helper as oh
    import onnxruntime as ort

    for op, shape, layout, dtype, d in pc.cases(args, ops=("layer_norm", "rms_norm")):
        pc.header(op, shape, layout, dtype, d)
        impl = "onnxruntime"
        if d == "bwd":
            rep.unavailable(impl, op, shape, layout, dtype, d,
                            "no training ops in the onnxruntime wheel")
            continue
        dims = pc.parse_shape(shape)
        n, h = dims
        et = TensorProto.BFLOAT16 if dtype == "bf16" else TensorProto.FLOAT
        X = oh.make_tensor_value_info("X", et, ["N", h])
        S = oh.make_tensor_value_info("scale", et, [h])
        B = oh.make_tensor_value_info("bias", et, [h])
        Y = oh.make_tensor_value_info("Y", et, ["N", h])
        M = oh.make_tensor_value_info("Mean", TensorProto.FLOAT, ["N", 1])
        R = oh.make_tensor_value_info("InvStdDev", TensorProto.FLOAT, ["N", 1])
        if op == "layer_norm":
            node = oh.make_node("LayerNormalization", ["X", "scale", "bias"],
                                ["Y", "Mean", "InvStdDev"], axis=-1,
                                epsilon=EPS_LN, stash_type=1)
            graph = oh.make_graph([node], "ln", [X, S, B], [Y, M, R])
        else:
            node = oh.make_node("SimplifiedLayerNormalization", ["X", "scale"],
                                ["Y", "InvStdDev"], axis=-1, epsilon=EPS_RMS,
                                stash_type=1)
            graph = oh.make_graph([node], "rms", [X, S], [Y, R])
        model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if args.threads > 1:
            cpu = pc.cpus()
            so.add_session_config_entry(
                "session.intra_op_thread_affinities",
                ";".join(str(cpu[i % len(cpu)] + 1) for i in range(1, args.threads)))
        try:
            sess = ort.InferenceSession(model.SerializeToString(), so,
                                        providers=["CPUExecutionProvider"])
            x, g, b, _ = inputs(dims, dtype)
            binding = sess.io_binding()
            if dtype == "bf16":
                # numpy has no bf16: OrtValues over the bit patterns
                def ov(a):
                    return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
                        a, TensorProto.BFLOAT16)
                xb, gb, bb = (pc.f32_to_bf16_bits(a) for a in (x, g, b))
                yb = np.zeros_like(xb)
                keep = [ov(xb), ov(gb), ov(bb), ov(yb)]
                binding.bind_ortvalue_input("X", keep[0])
                binding.bind_ortvalue_input("scale", keep[1])
                if op == "layer_norm":
                    binding.bind_ortvalue_input("bias", keep[2])
                binding.bind_ortvalue_output("Y", keep[3])
            else:
                binding.bind_cpu_input("X", x)
                binding.bind_cpu_input("scale", g)
                if op == "layer_norm":
                    binding.bind_cpu_input("bias", b)
                yb = np.empty_like(x)
                binding.bind_output("Y", "cpu", 0, np.float32, list(yb.shape),
                                    yb.ctypes.data)
            stats = {}
            for name in (["Mean", "InvStdDev"] if op == "layer_norm" else ["InvStdDev"]):
                stats[name] = np.empty((n, 1), np.float32)
                binding.bind_output(name, "cpu", 0, np.float32, [n, 1],
                                    stats[name].ctypes.data)

            def fn():
                sess.run_with_iobinding(binding)
            fn()
            y = pc.bf16_bits_to_f32(yb) if dtype == "bf16" else yb
            ref = _ref_fwd(op, x, g, b)
            rep.check(impl, op, shape, layout, dtype, d, "y",
                      float(np.max(np.abs(y - ref))), float(np.max(np.abs(ref))))
        except Exception as e:
            rep.unavailable(impl, op, shape, layout, dtype, d,
                            f"{type(e).__name__}: {str(e)[:160]}")
            continue
        pc.run_case(rep, args, impl, op, shape, layout, dtype, d, fn)


def _ref_fwd(op, x, g, b):
    x64 = x.astype(np.float64)
    if op == "layer_norm":
        m = x64.mean(-1, keepdims=True)
        v = ((x64 - m) ** 2).mean(-1, keepdims=True)
        return ((x64 - m) / np.sqrt(v + EPS_LN) * g + b).astype(np.float32)
    ms = (x64 ** 2).mean(-1, keepdims=True)
    return (x64 / np.sqrt(ms + EPS_RMS) * g).astype(np.float32)


# ------------------------------------------------------------- Halide ---

def halide_build(hl, op, n, h, dtype, threads):
    bf16 = dtype == "bf16"
    et = hl.UInt(16) if bf16 else hl.Float(32)
    X = hl.ImageParam(et, 2, "x")
    G = hl.ImageParam(et, 1, "g")
    B = hl.ImageParam(et, 1, "b")
    c, r, v = hl.Var("c"), hl.Var("r"), hl.Var("v")

    def f32(e):
        if bf16:
            return hl.reinterpret(hl.Float(32), hl.cast(hl.UInt(32), e) << 16)
        return e

    V = 16  # two AVX2 vectors of partial sums
    assert h % V == 0
    k = hl.RDom([(0, h // V)], "k")
    lanes = hl.RDom([(0, V)], "lanes")
    xf = hl.Func("xf")
    xf[c, r] = f32(X[c, r])
    s1 = hl.Func("s1")
    mean = hl.Func("mean")
    if op == "layer_norm":
        s1[v, r] = hl.f32(0)
        s1[v, r] += xf[k.x * V + v, r]
        mean[r] = hl.sum(s1[lanes.x, r]) / h
    else:
        mean[r] = hl.f32(0)
    s2 = hl.Func("s2")
    s2[v, r] = hl.f32(0)
    s2[v, r] += (xf[k.x * V + v, r] - mean[r]) * (xf[k.x * V + v, r] - mean[r])
    rstd = hl.Func("rstd")
    eps = EPS_LN if op == "layer_norm" else EPS_RMS
    rstd[r] = 1.0 / hl.sqrt(hl.sum(s2[lanes.x, r]) / h + eps)
    yf = (xf[c, r] - mean[r]) * rstd[r] * f32(G[c])
    if op == "layer_norm":
        yf = yf + f32(B[c])
    out = hl.Func("out")
    if bf16:
        bits = hl.reinterpret(hl.UInt(32), yf)
        out[c, r] = hl.cast(hl.UInt(16),
                            (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
    else:
        out[c, r] = yf
    # schedule
    ro, ri = hl.Var("ro"), hl.Var("ri")
    rows_per_task = max(1, min(16, n // (threads * 8) if n >= threads * 8 else 1))
    out.split(r, ro, ri, rows_per_task, hl.TailStrategy.GuardWithIf)
    out.vectorize(c, V).parallel(ro)
    for f in ([s1] if op == "layer_norm" else []) + [s2]:
        f.compute_at(out, ri).vectorize(v)
        f.update().vectorize(v)
    for f in ([mean] if op == "layer_norm" else []) + [rstd]:
        f.compute_at(out, ri)
    target = hl.get_jit_target_from_environment()
    out.compile_jit(target)
    return out, X, G, B


def halide_peer(args, rep):
    import halide as hl
    print(f"halide target {hl.get_jit_target_from_environment()}, "
          f"HL_NUM_THREADS={os.environ.get('HL_NUM_THREADS')}", file=sys.stderr)
    for op, shape, layout, dtype, d in pc.cases(args, ops=("layer_norm", "rms_norm")):
        pc.header(op, shape, layout, dtype, d)
        impl = "halide"
        if d == "bwd":
            rep.unavailable(impl, op, shape, layout, dtype, d,
                            "forward only (no hand-written backward schedule)")
            continue
        n, h = pc.parse_shape(shape)
        try:
            out, X, G, B = halide_build(hl, op, n, h, dtype, args.threads)
            x, g, b, _ = inputs([n, h], dtype)
            if dtype == "bf16":
                xa, ga, ba = (pc.f32_to_bf16_bits(a) for a in (x, g, b))
                ya = np.empty_like(xa)
            else:
                xa, ga, ba = x, g, b
                ya = np.empty_like(xa)
            X.set(hl.Buffer(xa))
            G.set(hl.Buffer(ga))
            B.set(hl.Buffer(ba))
            yb = hl.Buffer(ya)

            def fn():
                out.realize(yb)
            fn()
            y = pc.bf16_bits_to_f32(ya) if dtype == "bf16" else ya
            ref = _ref_fwd(op, x, g, b)
            rep.check(impl, op, shape, layout, dtype, d, "y",
                      float(np.max(np.abs(y - ref))), float(np.max(np.abs(ref))))
        except Exception as e:
            rep.unavailable(impl, op, shape, layout, dtype, d,
                            f"{type(e).__name__}: {str(e)[:160]}")
            continue
        pc.run_case(rep, args, impl, op, shape, layout, dtype, d, fn)


# ----------------------------------------------------------- JAX/IREE ---

def jax_functions(jnp, op):
    def fwd(x, g, b):
        xf = x.astype(jnp.float32)
        if op == "layer_norm":
            mean = xf.mean(-1, keepdims=True)
            var = jnp.square(xf - mean).mean(-1, keepdims=True)
            rstd = 1.0 / jnp.sqrt(var + EPS_LN)
            y = (xf - mean) * rstd * g.astype(jnp.float32) + b.astype(jnp.float32)
            return y.astype(x.dtype), mean[:, 0], rstd[:, 0]
        ms = jnp.square(xf).mean(-1, keepdims=True)
        rstd = 1.0 / jnp.sqrt(ms + EPS_RMS)
        y = xf * rstd * g.astype(jnp.float32)
        return y.astype(x.dtype), rstd[:, 0]
    return fwd


def jax_peer(args, rep, iree=False):
    import jax
    import jax.numpy as jnp
    impl = "iree" if iree else "xla"
    if iree:
        import iree.compiler as ic
        import iree.runtime as ir
        if args.threads == 1:
            config = ir.Config("local-sync")
        else:
            cpu = pc.cpus()
            ir.flags.parse_flags(
                "--task_topology_cpu_ids=" +
                ",".join(str(cpu[i % len(cpu)]) for i in range(args.threads)))
            config = ir.Config("local-task")
    print(f"jax {jax.__version__} XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}",
          file=sys.stderr)
    for op, shape, layout, dtype, d in pc.cases(args, ops=("layer_norm", "rms_norm")):
        pc.header(op, shape, layout, dtype, d)
        n, h = pc.parse_shape(shape)
        jdt = jnp.bfloat16 if dtype == "bf16" else jnp.float32
        try:
            fwd = jax_functions(jnp, op)
            x, g, b, dy = inputs([n, h], dtype)
            xs, gs, bs, dys = (jnp.asarray(a, dtype=jdt) for a in (x, g, b, dy))
            if d == "fwd":
                f = fwd
                fargs = (xs, gs, bs)
            else:
                def f(x_, g_, b_, dy_):
                    _, vjp = jax.vjp(lambda a, c, e: fwd(a, c, e)[0], x_, g_, b_)
                    grads = vjp(dy_)
                    return grads if op == "layer_norm" else grads[:2]
                fargs = (xs, gs, bs, dys)
            if not iree:
                jf = jax.jit(f)
                jax.block_until_ready(jf(*fargs))

                def fn():
                    jax.block_until_ready(jf(*fargs))
                res = jf(*fargs)
            else:
                text = jax.jit(f, keep_unused=True).lower(*fargs).as_text()
                vmfb = ic.compile_str(
                    text, target_backends=["llvm-cpu"], input_type="stablehlo",
                    extra_args=["--iree-llvmcpu-target-cpu=host"])
                ctx = ir.SystemContext(config=config)
                vm = ir.VmModule.copy_buffer(ctx.instance, vmfb)
                ctx.add_vm_module(vm)
                mod = ctx.modules[vm.name]
                entry = mod["main"]
                dev = ctx.config.device
                dargs = [ir.asdevicearray(dev, np.asarray(a)) for a in fargs]
                entry(*dargs)

                def fn():
                    entry(*dargs)
                res = entry(*dargs)
                if not isinstance(res, (tuple, list)):
                    res = (res,)
                res = [np.asarray(r.to_host() if hasattr(r, "to_host") else r)
                       for r in res]
            # check
            if d == "fwd":
                y = np.asarray(res[0]).astype(np.float32)
                ref = _ref_fwd(op, x, g, b)
                rep.check(impl, op, shape, layout, dtype, d, "y",
                          float(np.max(np.abs(y - ref))), float(np.max(np.abs(ref))))
        except Exception as e:
            rep.unavailable(impl, op, shape, layout, dtype, d,
                            f"{type(e).__name__}: {str(e)[:200]}")
            continue
        pc.run_case(rep, args, impl, op, shape, layout, dtype, d, fn)


def main():
    ap = pc.common_args(__doc__)
    ap.add_argument("--peer", required=True,
                    choices=["onnxruntime", "halide", "jax", "iree"])
    args = pc.finish_args(ap.parse_args())
    rep = pc.Reporter(args, args.peer)
    try:
        if args.peer == "onnxruntime":
            ort_peer(args, rep)
        elif args.peer == "halide":
            halide_peer(args, rep)
        elif args.peer == "jax":
            jax_peer(args, rep)
        else:
            jax_peer(args, rep, iree=True)
    except ImportError as e:
        print(f"{args.peer}: not installed ({e})", file=sys.stderr)
        for op, shape, layout, dtype, d in pc.cases(args, ops=("layer_norm", "rms_norm")):
            rep.unavailable(args.peer, op, shape, layout, dtype, d,
                            f"not installed: {e}")


if __name__ == "__main__":
    main()
