"""Run a quantized matmul through a deployed runtime, to check numsim's output-stage presets against it
bit for bit (tests/test_runtime_stages.py, docs/units.md "Output stages").

- ONNX Runtime (onnx + onnxruntime, the test extra): a one-node QLinearMatMul model, and MatMulInteger ->
  Cast -> Mul -> QuantizeLinear, both built with onnx.helper and run on the CPU execution provider.
- TFLite (tensorflow's tf.lite.Interpreter, opt-in: the `tflite` extra): a one-op FULLY_CONNECTED model
  written from TFLite's flatbuffer schema (schema_py_generated's object API), run with the reference
  kernels (BUILTIN_REF), the optimized kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES) or the default
  XNNPACK delegate (BUILTIN).

Operands are numpy int8 / uint8 value arrays: A (M, K), B (K, N); per-channel scales and zero points of B
run along N. Imports are lazy: numsim never needs these packages."""
from __future__ import annotations

import numpy as np


def _onnx_type(dt):
    from onnx import TensorProto

    return {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}[np.dtype(dt)]


def _session(graph):
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    # no graph rewrites: the nodes run as written
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def onnx_qlinear_matmul(A, B, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point,
                        out_dtype, b_constant=True):
    """ONNX Runtime's QLinearMatMul (opset 21) of A @ B; per-channel b_scale / b_zero_point as (1, N)."""
    from onnx import helper, numpy_helper

    M, K = A.shape
    N = B.shape[1]
    per_channel = np.ndim(b_scale) > 0
    shape_b = (1, N) if per_channel else ()
    sb = np.asarray(b_scale, np.float32).reshape(shape_b)
    zb = np.broadcast_to(np.asarray(b_zero_point), sb.shape).astype(B.dtype)
    inits = [numpy_helper.from_array(np.array(a_scale, np.float32), "sa"),
             numpy_helper.from_array(np.array(a_zero_point, A.dtype), "za"),
             numpy_helper.from_array(sb, "sb"), numpy_helper.from_array(zb, "zb"),
             numpy_helper.from_array(np.array(out_scale, np.float32), "sy"),
             numpy_helper.from_array(np.array(out_zero_point, out_dtype), "zy")]
    inputs = [helper.make_tensor_value_info("A", _onnx_type(A.dtype), [M, K])]
    if b_constant:
        inits.append(numpy_helper.from_array(B, "B"))
    else:
        inputs.append(helper.make_tensor_value_info("B", _onnx_type(B.dtype), [K, N]))
    node = helper.make_node("QLinearMatMul", ["A", "sa", "za", "B", "sb", "zb", "sy", "zy"], ["Y"])
    graph = helper.make_graph([node], "qlinear_matmul", inputs,
                              [helper.make_tensor_value_info("Y", _onnx_type(out_dtype), [M, N])], inits)
    feed = {"A": A} if b_constant else {"A": A, "B": B}
    return _session(graph).run(None, feed)[0]


def onnx_matmul_integer_requant(A, B, a_zero_point, b_zero_point, scale, out_zero_point, out_dtype):
    """MatMulInteger (exact int32 with zero points) -> Cast(float) -> Mul(scale, float32, one or per
    column) -> QuantizeLinear(y_scale 1, out_zero_point): the float32 rule with y_scale's division exact."""
    from onnx import TensorProto, helper, numpy_helper

    M, K = A.shape
    N = B.shape[1]
    zb = np.asarray(b_zero_point).astype(B.dtype)
    inits = [numpy_helper.from_array(B, "B"), numpy_helper.from_array(np.array(a_zero_point, A.dtype), "za"),
             numpy_helper.from_array(zb, "zb"),
             numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(out_zero_point, out_dtype), "zy")]
    nodes = [helper.make_node("MatMulInteger", ["A", "B", "za", "zb"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["accf", "s"], ["scaled"]),
             helper.make_node("QuantizeLinear", ["scaled", "one", "zy"], ["Y"])]
    graph = helper.make_graph(nodes, "matmul_integer_requant",
                              [helper.make_tensor_value_info("A", _onnx_type(A.dtype), [M, K])],
                              [helper.make_tensor_value_info("Y", _onnx_type(out_dtype), [M, N])], inits)
    return _session(graph).run(None, {"A": A})[0]


def tflite_fully_connected_model(K, N, B, a_scale, a_zero_point, b_scale, b_zero_point, out_scale,
                                 out_zero_point, dtype, M=1):
    """The bytes of a .tflite model with one FULLY_CONNECTED op (no bias): input (M, K), weights (N, K) =
    B.T, output (M, N); per-channel b_scale quantizes weights along their dimension 0 (TFLite's per-channel
    int8 requires weight zero points 0)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as s

    ttype = {np.dtype(np.int8): s.TensorType.INT8, np.dtype(np.uint8): s.TensorType.UINT8}[np.dtype(dtype)]

    def quant(scales, zps, dim=0):
        q = s.QuantizationParametersT()
        q.scale = [float(x) for x in np.atleast_1d(np.asarray(scales, np.float32))]
        q.zeroPoint = [int(x) for x in np.broadcast_to(np.atleast_1d(zps), (len(q.scale),))]
        q.quantizedDimension = dim
        return q

    def tensor(name, shape, buf, q):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name, t.quantization = list(shape), ttype, buf, name, q
        return t

    buffers = [s.BufferT() for _ in range(4)]          # buffer 0 is the empty sentinel
    buffers[2].data = list(np.ascontiguousarray(np.asarray(B).T).astype(dtype).tobytes())
    sg = s.SubGraphT()
    sg.tensors = [tensor("input", (M, K), 1, quant(a_scale, a_zero_point)),
                  tensor("weights", (N, K), 2, quant(b_scale, b_zero_point)),
                  tensor("output", (M, N), 3, quant(out_scale, out_zero_point))]
    sg.inputs, sg.outputs = [0], [2]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, -1], [2]
    op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = s.FullyConnectedOptionsT()
    sg.operators = [op]
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [sg], buffers
    model.description = "numsim output-stage check"
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


TFLITE_KERNELS = {"reference": "BUILTIN_REF", "optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
                  "xnnpack": "BUILTIN"}


def tflite_fully_connected(A, B, a_scale, a_zero_point, b_scale, b_zero_point, out_scale, out_zero_point,
                           kernels="reference"):
    """Output values of TFLite's FULLY_CONNECTED on A (M, K) and weights B (K, N), with the kernels named
    by TFLITE_KERNELS."""
    import tensorflow as tf

    M, K = A.shape
    N = B.shape[1]
    model = tflite_fully_connected_model(K, N, B, a_scale, a_zero_point, b_scale, b_zero_point, out_scale,
                                         out_zero_point, A.dtype, M=M)
    kind = getattr(tf.lite.experimental.OpResolverType, TFLITE_KERNELS[kernels])
    it = tf.lite.Interpreter(model_content=model, experimental_op_resolver_type=kind, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(A))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


# ---- the cases the checks run (tests/test_runtime_stages.py, tools/record_runtimes.py) -------------

def cases(seed=0, M=16, K=32, N=12):
    """Quantized-matmul cases, each a dict: A (M, K), B (K, N) value arrays of `dtype` (int8 / uint8),
    a_scale, a_zero_point, b_scale (a float, or one per column when per_channel), b_zero_point,
    out_scale, out_zero_point, kind ("random": realistic scales; "ties": real multipliers odd / 2 (or 1/4)
    and small operands, so that up to half the outputs are exact ties acc * scale = j + 1/2)."""
    rng = np.random.default_rng(seed)
    out = []
    for dtype in (np.int8, np.uint8):
        signed = dtype == np.int8
        for per_channel in (False, True):
            for kind in ("random", "ties"):
                za = int(rng.integers(-4, 5)) if signed else int(rng.integers(120, 137))
                zb = 0 if signed else int(rng.integers(120, 137))
                zo = int(rng.integers(-10, 11)) if signed else int(rng.integers(118, 139))
                if kind == "random":
                    lo, hi = (-128, 128) if signed else (0, 256)
                    A = rng.integers(lo, hi, (M, K))
                    B = rng.integers(lo, hi, (K, N))
                    sa = float(np.float32(rng.uniform(0.01, 0.05)))
                    sb = (rng.uniform(0.002, 0.01, N) if per_channel else rng.uniform(0.002, 0.01))
                    so = float(np.float32(rng.uniform(0.05, 0.2)))
                else:
                    A = za + rng.integers(-3, 4, (M, K))
                    B = zb + rng.integers(-3, 4, (K, N))
                    sa, so = 1.0, 2.0
                    # real multipliers sb / 2 = 1/2, 3/2, 5/2 (every odd accumulator is a tie), 1/4
                    choices = np.array([1.0, 3.0, 5.0, 1.0, 0.5])
                    sb = rng.choice(choices, N) if per_channel else float(rng.choice(choices))
                sb = np.asarray(sb, np.float32) if per_channel else float(np.float32(sb))
                out.append(dict(A=np.asarray(A).astype(dtype), B=np.asarray(B).astype(dtype), dtype=dtype,
                                per_channel=per_channel, kind=kind, a_scale=sa, a_zero_point=za,
                                b_scale=sb, b_zero_point=zb, out_scale=so, out_zero_point=zo))
    return out


def stage_of(preset, case):
    """numsim's OutputStage of `preset` for a case of cases()."""
    from ..units.runtime_stage import output_stage

    zb = case["b_zero_point"]
    if case["per_channel"]:
        zb = [zb] * len(case["b_scale"])
    return output_stage(preset, case["a_scale"], case["b_scale"], case["out_scale"],
                        a_zero_point=case["a_zero_point"], b_zero_point=zb,
                        out_zero_point=case["out_zero_point"], out_fmt=np.dtype(case["dtype"]).name)


def numsim_outputs(preset, case):
    """Output values (int64) of numsim.matmul with the preset's output stage on a case."""
    from ..gemm import matmul
    from ..units import get_unit

    A, B = case["A"], case["B"]
    unit = get_unit("int4_int32", a_fmt=np.dtype(A.dtype).name, b_fmt=np.dtype(B.dtype).name, widen_bits=32)
    res = matmul(A.view(np.uint8), B.view(np.uint8), unit, output_stage=stage_of(preset, case))
    codes = res.out_codes
    return (codes.view(np.int8) if case["dtype"] == np.int8 else codes).astype(np.int64)


def runtime_outputs(runtime, case):
    """Output values (int64) of a runtime on a case: "onnxruntime" (QLinearMatMul, B constant),
    "onnxruntime_b_input" (B fed as an input), "tflite_reference" / "tflite_optimized" / "tflite_xnnpack"."""
    c = case
    args = (c["A"], c["B"], c["a_scale"], c["a_zero_point"], c["b_scale"], c["b_zero_point"], c["out_scale"],
            c["out_zero_point"])
    if runtime.startswith("onnxruntime"):
        y = onnx_qlinear_matmul(*args, c["dtype"], b_constant=runtime == "onnxruntime")
    else:
        y = tflite_fully_connected(*args, kernels=runtime[len("tflite_"):])
    return y.astype(np.int64)


# TFLite accepts per-channel FULLY_CONNECTED for int8 (weight zero points 0) only
def tflite_supports(case):
    return not (case["per_channel"] and case["dtype"] == np.uint8)
