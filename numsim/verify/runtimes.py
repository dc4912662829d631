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
