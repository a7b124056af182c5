#!/usr/bin/env python3
"""Checks models that backflow exported to ONNX, with Debian's python3-onnx and numpy only.

Usage: onnx_reference.py CASE_DIR...

Each CASE_DIR holds model.onnx and test_data_set_0/{input,output}_K.pb (TensorProtos named
after the graph's inputs and outputs; ONNX's own test-data layout). For each case:
onnx.checker.check_model(full_check=True), then the model is run by the numpy interpreter below
(written from the ONNX operator specification, opset 14, for the operators backflow's exporter
writes) and every output compared with what backflow computed. Exits 1 on any failure.
"""

import math
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    g = a.get("group", 1)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    y = np.zeros((n, o, oh, ow), dtype=x.dtype)
    og = o // g
    for gi in range(g):
        xs = xp[:, gi * cg:(gi + 1) * cg]
        ws = w[gi * og:(gi + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                           j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, gi * og:(gi + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def pool_out(size, k, s, d, p0, p1, ceil):
    span = size + p0 + p1 - ((k - 1) * d + 1)
    return (-(-span // s) if ceil else span // s) + 1


def pool(x, a, kind):
    n, c, h, w = x.shape
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    ceil = a.get("ceil_mode", 0) == 1
    oh = pool_out(h, kh, sh, dh, pt, pb, ceil)
    ow = pool_out(w, kw, sw, dw, pl, pr, ceil)
    y = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows = [i * sh - pt + t * dh for t in range(kh)]
            cols = [j * sw - pl + t * dw for t in range(kw)]
            inside_r = [r for r in rows if 0 <= r < h]
            inside_c = [q for q in cols if 0 <= q < w]
            window = x[:, :, inside_r][:, :, :, inside_c]
            if kind == "max":
                y[:, :, i, j] = window.max(axis=(2, 3))
                continue
            if a.get("count_include_pad", 0) == 1:
                count = (len([r for r in rows if -pt <= r < h + pb]) *
                         len([q for q in cols if -pl <= q < w + pr]))
            else:
                count = len(inside_r) * len(inside_c)
            y[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return y


def gemm(a_, b_, c_, a):
    if a.get("transA", 0):
        a_ = a_.T
    if a.get("transB", 0):
        b_ = b_.T
    y = a.get("alpha", 1.0) * (a_ @ b_)
    if c_ is not None:
        y = y + a.get("beta", 1.0) * c_
    return y


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reduce(fn, x, axes, keepdims):
    axes = tuple(range(x.ndim)) if axes is None else tuple(int(v) for v in axes)
    return fn(x, axis=axes, keepdims=bool(keepdims))


def reshape(x, shape):
    target = [x.shape[i] if int(v) == 0 else int(v) for i, v in enumerate(shape)]
    return x.reshape(target)


def slice_(x, starts, ends, axes, steps):
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def pad(x, pads, value, a):
    """Constant mode; negative pads crop."""
    r = x.ndim
    begin = [int(p) for p in pads[:r]]
    end = [int(p) for p in pads[r:]]
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    assert mode == "constant", mode
    y = np.pad(x, [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)],
               constant_values=0 if value is None else value)
    crop = tuple(slice(max(-b, 0), y.shape[d] - max(-e, 0))
                 for d, (b, e) in enumerate(zip(begin, end)))
    return y[crop]


erf = np.vectorize(math.erf, otypes=[np.float64])

OPS = {
    "Constant": lambda i, a: numpy_helper.to_array(a["value"]),
    "Relu": lambda i, a: np.maximum(i[0], 0),
    "Sigmoid": lambda i, a: 1 / (1 + np.exp(-i[0])),
    "Tanh": lambda i, a: np.tanh(i[0]),
    "Erf": lambda i, a: erf(i[0]).astype(i[0].dtype),
    "Exp": lambda i, a: np.exp(i[0]),
    "Log": lambda i, a: np.log(i[0]),
    "Sqrt": lambda i, a: np.sqrt(i[0]),
    "Neg": lambda i, a: -i[0],
    "Reciprocal": lambda i, a: 1 / i[0],
    "LeakyRelu": lambda i, a: np.where(i[0] > 0, i[0], a.get("alpha", 0.01) * i[0]),
    "Add": lambda i, a: i[0] + i[1],
    "Sub": lambda i, a: i[0] - i[1],
    "Mul": lambda i, a: i[0] * i[1],
    "Div": lambda i, a: i[0] / i[1],
    "Pow": lambda i, a: np.power(i[0], i[1]),
    "Max": lambda i, a: np.maximum(i[0], i[1]),
    "Min": lambda i, a: np.minimum(i[0], i[1]),
    "Clip": lambda i, a: np.clip(i[0], i[1] if len(i) > 1 and i[1] is not None else -np.inf,
                                 i[2] if len(i) > 2 and i[2] is not None else np.inf),
    "Dropout": lambda i, a: i[0],
    "Conv": lambda i, a: conv(i[0], i[1], i[2] if len(i) > 2 else None, a),
    "BatchNormalization": lambda i, a: (
        (i[0] - i[3].reshape(1, -1, *([1] * (i[0].ndim - 2)))) /
        np.sqrt(i[4].reshape(1, -1, *([1] * (i[0].ndim - 2))) + a.get("epsilon", 1e-5)) *
        i[1].reshape(1, -1, *([1] * (i[0].ndim - 2))) +
        i[2].reshape(1, -1, *([1] * (i[0].ndim - 2)))),
    "MaxPool": lambda i, a: pool(i[0], a, "max"),
    "AveragePool": lambda i, a: pool(i[0], a, "avg"),
    "GlobalAveragePool": lambda i, a: i[0].mean(axis=(2, 3), keepdims=True),
    "Gemm": lambda i, a: gemm(i[0], i[1], i[2] if len(i) > 2 else None, a),
    "MatMul": lambda i, a: np.matmul(i[0], i[1]),
    "Transpose": lambda i, a: np.transpose(i[0], a.get("perm")),
    "Flatten": lambda i, a: i[0].reshape(
        int(np.prod(i[0].shape[:a.get("axis", 1)])), -1),
    "Reshape": lambda i, a: reshape(i[0], i[1]),
    "Concat": lambda i, a: np.concatenate(i, axis=a["axis"]),
    "Softmax": lambda i, a: softmax(i[0], a.get("axis", -1)),
    "LogSoftmax": lambda i, a: np.log(softmax(i[0], a.get("axis", -1))),
    "ReduceMean": lambda i, a: reduce(np.mean, i[0], a.get("axes"), a.get("keepdims", 1)),
    "ReduceSum": lambda i, a: reduce(np.sum, i[0], i[1] if len(i) > 1 else None,
                                     a.get("keepdims", 1)),
    "Gather": lambda i, a: np.take(i[0], i[1], axis=a.get("axis", 0)),
    "Slice": lambda i, a: slice_(*i),
    "Pad": lambda i, a: pad(i[0], i[1], i[2] if len(i) > 2 else None, a),
}


def run(model, feeds):
    env = dict(feeds)
    for t in model.graph.initializer:
        env[t.name] = numpy_helper.to_array(t)
    for node in model.graph.node:
        ins = [env[name] if name else None for name in node.input]
        out = OPS[node.op_type](ins, attrs_of(node))
        env[node.output[0]] = np.asarray(out)
    return env


def load_tensors(folder, prefix):
    tensors = {}
    k = 0
    while os.path.exists(os.path.join(folder, f"{prefix}_{k}.pb")):
        t = onnx.TensorProto()
        with open(os.path.join(folder, f"{prefix}_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        tensors[t.name] = numpy_helper.to_array(t)
        k += 1
    return tensors


def check_case(case):
    model = onnx.load(os.path.join(case, "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    data = os.path.join(case, "test_data_set_0")
    expected = load_tensors(data, "output")
    if sorted(expected) != sorted(o.name for o in model.graph.output):
        return [f"outputs {sorted(o.name for o in model.graph.output)}, expected {sorted(expected)}"]
    env = run(model, load_tensors(data, "input"))
    problems = []
    for name, want in expected.items():
        got = env[name]
        tol = 1e-10 if want.dtype == np.float64 else 2e-5
        if got.shape != want.shape or got.dtype != want.dtype:
            problems.append(f"{name}: {got.dtype}{list(got.shape)}, backflow "
                            f"{want.dtype}{list(want.shape)}")
        elif not np.allclose(got, want, rtol=tol, atol=tol, equal_nan=True):
            worst = np.nanmax(np.abs(got - want) / (np.abs(want) + tol))
            problems.append(f"{name}: differs from backflow (worst relative {worst:.3g})")
    return problems


def main(cases):
    failed = 0
    for case in cases:
        try:
            problems = check_case(case)
        except Exception as e:  # the checker's, or the interpreter meeting what it cannot run
            problems = [f"{type(e).__name__}: {e}"]
        print(f"{'FAIL' if problems else 'ok'} {os.path.basename(case)}")
        for p in problems:
            print(f"  {p}")
        failed += bool(problems)
    return 1 if failed or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
