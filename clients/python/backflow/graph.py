"""Building backflow.v1.Graph messages in Python, and reading them from text files.

    g = GraphBuilder("mlp")
    x = g.placeholder("x", [-1, 2])
    labels = g.placeholder("labels", [-1])
    w = g.parameter("w", [2, 3], init="glorot")
    b = g.parameter("b", [3])
    logits = g.linear(x, w, b, name="logits")
    g.output(logits)
    g.loss(g.softmax_cross_entropy(logits, labels, name="loss"))
    graph = g.build()

Every value is referred to by its name (a str): a node's name is the name of the tensor it
produces. Op names, input order and attribute names are the engine's (engine/gates/*.h); the
convenience methods below cover every public gate, and `op` reaches any gate by name. The
builder checks what it can see locally (unique names, inputs defined before use, attribute
types); shapes and everything else are checked by the server, whose INVALID_ARGUMENT message
names the node at fault.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
from google.protobuf import text_format

from backflow.tensors import DTypeLike, data_type, to_tensor
from backflow.v1 import graph_pb2

Graph = graph_pb2.Graph
Initializer = graph_pb2.Initializer

#: How a parameter's initial value may be given (see `make_initializer`).
InitSpec = Union[str, float, int, tuple, list, np.ndarray, Initializer]

_NAMED_INITIALIZERS = {
    "zeros": lambda: Initializer(zeros=Initializer.Zeros()),
    "glorot": lambda: Initializer(glorot=Initializer.Glorot()),
    "glorot_normal": lambda: Initializer(
        glorot=Initializer.Glorot(distribution=Initializer.DISTRIBUTION_NORMAL)),
    "he": lambda: Initializer(he=Initializer.He()),
    "he_normal": lambda: Initializer(
        he=Initializer.He(distribution=Initializer.DISTRIBUTION_NORMAL)),
}


def make_initializer(spec: InitSpec, shape: Sequence[int] = ()) -> Initializer:
    """An Initializer message from a short description.

    `spec` is one of: "zeros", "glorot" (uniform), "glorot_normal", "he" (uniform), "he_normal";
    ("normal", mean, stddev); ("uniform", low, high); ("constant", value) or a bare number (every
    element = value); a NumPy array or nested list of explicit values (its shape must be
    `shape`; float64 arrays stay float64, others are sent as float32); or an Initializer.

    Raises:
        ValueError: an unknown name, a malformed tuple, or explicit values of the wrong shape.
    """
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        if spec not in _NAMED_INITIALIZERS:
            raise ValueError(f"unknown initializer {spec!r} (known: "
                             f"{', '.join(sorted(_NAMED_INITIALIZERS))})")
        return _NAMED_INITIALIZERS[spec]()
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return Initializer(constant=Initializer.Fill(value=float(spec)))
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        kind, args = spec[0], spec[1:]
        if kind == "normal" and len(args) == 2:
            return Initializer(normal=Initializer.Normal(mean=args[0], stddev=args[1]))
        if kind == "uniform" and len(args) == 2:
            return Initializer(uniform=Initializer.Uniform(low=args[0], high=args[1]))
        if kind == "constant" and len(args) == 1:
            return Initializer(constant=Initializer.Fill(value=args[0]))
        raise ValueError(f"initializer {spec!r}: expected ('normal', mean, stddev), "
                         "('uniform', low, high) or ('constant', value)")
    value = to_tensor(spec, name="initial value")
    if list(value.shape) != list(shape):
        raise ValueError(f"initial value has shape {list(value.shape)}, parameter has "
                         f"{list(shape)}")
    return Initializer(value=value)


def attr_value(value: Any) -> graph_pb2.AttrValue:
    """An AttrValue from a Python value: bool and int -> i, float -> f, str -> s, a sequence of
    ints -> ints, a sequence of numbers with a float among them -> floats.

    Raises:
        TypeError: any other value.
    """
    if isinstance(value, graph_pb2.AttrValue):
        return value
    if isinstance(value, (bool, numbers.Integral)):
        return graph_pb2.AttrValue(i=int(value))
    if isinstance(value, numbers.Real):
        return graph_pb2.AttrValue(f=float(value))
    if isinstance(value, str):
        return graph_pb2.AttrValue(s=value)
    if isinstance(value, (Sequence, np.ndarray)):
        items = list(value)
        if all(isinstance(v, (bool, numbers.Integral)) for v in items):
            return graph_pb2.AttrValue(ints=graph_pb2.IntList(values=[int(v) for v in items]))
        if all(isinstance(v, numbers.Real) for v in items):
            return graph_pb2.AttrValue(
                floats=graph_pb2.FloatList(values=[float(v) for v in items]))
    raise TypeError(f"attribute value {value!r}: expected an int, float, str or a list of "
                    "numbers")


class GraphBuilder:
    """Accumulates placeholders, parameters, constants and nodes into one Graph.

    Methods that add a tensor return its name, to be passed as an input to later nodes. Names
    must be unique across the graph; a node left unnamed gets "<op>_<k>".
    """

    def __init__(self, name: str = "graph") -> None:
        self._graph = Graph(name=name)
        self._names: set[str] = set()

    # Leaves --------------------------------------------------------------------------------

    def placeholder(self, name: str, shape: Sequence[int] = (), dtype: DTypeLike = None) -> str:
        """A value fed with every run; shape[0] may be -1 for the batch. () is a scalar.

        `dtype` "int32" or "int64" makes a placeholder of labels or ids, fed in exactly that
        dtype; None (or a float dtype): fed in the model's float dtype.
        """
        wire = data_type(dtype) if dtype is not None else None
        self._claim(name)
        placeholder = self._graph.placeholders.add(name=name, shape=list(shape))
        if wire is not None:
            placeholder.dtype = wire
        return name

    def parameter(self, name: str, shape: Sequence[int] = (),
                  init: Optional[InitSpec] = None) -> str:
        """A learnable tensor with a fully defined shape; `init` as in `make_initializer`
        (None: no initializer in the message, which the server reads as zeros)."""
        initializer = make_initializer(init, shape) if init is not None else None
        self._claim(name)
        self._graph.parameters.add(name=name, shape=list(shape), init=initializer)
        return name

    def state(self, name: str, shape: Sequence[int] = (),
              init: Optional[InitSpec] = None) -> str:
        """Running state (batch norm's running mean and variance): a tensor of the model that
        training steps update by rule, not by gradient; `init` as for `parameter` (None: zeros)."""
        initializer = make_initializer(init, shape) if init is not None else None
        self._claim(name)
        self._graph.states.add(name=name, shape=list(shape), init=initializer)
        return name

    def constant(self, name: str, value: Any, dtype: Any = None) -> str:
        """A fixed tensor stored in the graph (converted with `to_tensor(value, dtype)`)."""
        tensor = to_tensor(value, dtype, name=f"constant '{name}'")
        self._claim(name)
        self._graph.constants.add(name=name, value=tensor)
        return name

    # Nodes ---------------------------------------------------------------------------------

    def op(self, op: str, *inputs: str, name: Optional[str] = None, **attrs: Any) -> str:
        """Adds a node applying gate `op` to `inputs` (in the gate's argument order).

        Attributes whose value is None are left out (the gate's default applies).

        Raises:
            ValueError: the name is taken, or an input is not a tensor defined so far.
            TypeError: an attribute value has no AttrValue form.
        """
        for value in inputs:
            if value not in self._names:
                raise ValueError(f"node {name or op!r}: input {value!r} is not defined")
        name = name if name is not None else self._fresh_name(op)
        node = graph_pb2.Node(name=name, op=op, inputs=list(inputs))
        for key, value in attrs.items():
            if value is not None:
                node.attrs[key].CopyFrom(attr_value(value))
        self._claim(name)
        self._graph.nodes.append(node)
        return name

    def output(self, *values: str) -> None:
        """Marks tensors as graph outputs (what inference returns by default)."""
        for value in values:
            self._check_defined(value, "output")
            self._graph.outputs.append(value)

    def loss(self, value: str) -> None:
        """Sets the scalar that training minimises."""
        self._check_defined(value, "loss")
        self._graph.loss = value

    def build(self) -> Graph:
        """A copy of the graph as built so far."""
        graph = Graph()
        graph.CopyFrom(self._graph)
        return graph

    # Binary elementwise, with NumPy broadcasting (engine/gates/binary.h) --------------------

    def add(self, a: str, b: str, name: Optional[str] = None) -> str:
        return self.op("add", a, b, name=name)

    def sub(self, a: str, b: str, name: Optional[str] = None) -> str:
        return self.op("sub", a, b, name=name)

    def mul(self, a: str, b: str, name: Optional[str] = None) -> str:
        return self.op("mul", a, b, name=name)

    def div(self, a: str, b: str, name: Optional[str] = None) -> str:
        return self.op("div", a, b, name=name)

    def maximum(self, a: str, b: str, name: Optional[str] = None) -> str:
        return self.op("max", a, b, name=name)

    def minimum(self, a: str, b: str, name: Optional[str] = None) -> str:
        return self.op("min", a, b, name=name)

    def pow(self, a: str, b: str, name: Optional[str] = None) -> str:
        return self.op("pow", a, b, name=name)

    # Unary elementwise (engine/gates/unary.h) -----------------------------------------------

    def neg(self, x: str, name: Optional[str] = None) -> str:
        return self.op("neg", x, name=name)

    def exp(self, x: str, name: Optional[str] = None) -> str:
        return self.op("exp", x, name=name)

    def log(self, x: str, name: Optional[str] = None) -> str:
        return self.op("log", x, name=name)

    def reciprocal(self, x: str, name: Optional[str] = None) -> str:
        return self.op("reciprocal", x, name=name)

    def square(self, x: str, name: Optional[str] = None) -> str:
        return self.op("square", x, name=name)

    def sqrt(self, x: str, name: Optional[str] = None) -> str:
        return self.op("sqrt", x, name=name)

    def sigmoid(self, x: str, name: Optional[str] = None) -> str:
        return self.op("sigmoid", x, name=name)

    def tanh(self, x: str, name: Optional[str] = None) -> str:
        return self.op("tanh", x, name=name)

    def erf(self, x: str, name: Optional[str] = None) -> str:
        return self.op("erf", x, name=name)

    def gelu(self, x: str, approximate: str = "none", name: Optional[str] = None) -> str:
        """torch.nn.functional.gelu: approximate "none" (erf) or "tanh"."""
        return self.op("gelu", x, name=name, approximate=approximate)

    def clip(self, x: str, min: Optional[float] = None, max: Optional[float] = None,
             name: Optional[str] = None) -> str:
        """torch.clamp: min, max or both; the bounds pass the gradient."""
        attrs = {}
        if min is not None:
            attrs["min"] = float(min)
        if max is not None:
            attrs["max"] = float(max)
        return self.op("clip", x, name=name, **attrs)

    def softmax(self, x: str, axis: int = -1, name: Optional[str] = None) -> str:
        return self.op("softmax", x, name=name, axis=int(axis))

    def log_softmax(self, x: str, axis: int = -1, name: Optional[str] = None) -> str:
        return self.op("log_softmax", x, name=name, axis=int(axis))

    def relu(self, x: str, name: Optional[str] = None) -> str:
        return self.op("relu", x, name=name)

    def leaky_relu(self, x: str, alpha: float = 0.01, name: Optional[str] = None) -> str:
        return self.op("leaky_relu", x, name=name, alpha=float(alpha))

    def add_scalar(self, x: str, c: float, name: Optional[str] = None) -> str:
        """c + x."""
        return self.op("add_scalar", x, name=name, c=float(c))

    def mul_scalar(self, x: str, a: float, name: Optional[str] = None) -> str:
        """a * x."""
        return self.op("mul_scalar", x, name=name, a=float(a))

    # Dense, convolution and pooling (matmul.h, conv.h, pool.h) -------------------------------

    def matmul(self, a: str, b: str, transpose_a: bool = False, transpose_b: bool = False,
               name: Optional[str] = None) -> str:
        return self.op("matmul", a, b, name=name, transpose_a=transpose_a or None,
                       transpose_b=transpose_b or None)

    def linear(self, x: str, w: str, b: Optional[str] = None, name: Optional[str] = None) -> str:
        """x w + b for x [..., in] (every leading index a row), w [in, out], b [out] (optional)."""
        return self.op("linear", x, w, *([b] if b is not None else []), name=name)

    def conv2d(self, x: str, w: str, b: Optional[str] = None,
               stride: Optional[Sequence[int]] = None, padding: Optional[Sequence[int]] = None,
               dilation: Optional[Sequence[int]] = None, groups: int = 1,
               name: Optional[str] = None) -> str:
        """x [N, C, H, W] with w [O, C / groups, KH, KW] and optional b [O]; padding [ph, pw]
        or [top, left, bottom, right]; groups C is depthwise."""
        return self.op("conv2d", x, w, *([b] if b is not None else []), name=name,
                       stride=stride, padding=padding, dilation=dilation,
                       groups=groups if groups != 1 else None)

    def max_pool2d(self, x: str, kernel: Sequence[int], stride: Optional[Sequence[int]] = None,
                   padding: Optional[Sequence[int]] = None,
                   dilation: Optional[Sequence[int]] = None, ceil_mode: bool = False,
                   name: Optional[str] = None) -> str:
        """Window maxima; dilation [dh, dw] (1: adjacent taps) and ceil_mode as PyTorch."""
        return self.op("max_pool2d", x, name=name, kernel=kernel, stride=stride, padding=padding,
                       dilation=dilation, ceil_mode=ceil_mode or None)

    def avg_pool2d(self, x: str, kernel: Sequence[int], stride: Optional[Sequence[int]] = None,
                   padding: Optional[Sequence[int]] = None, count_include_pad: bool = True,
                   ceil_mode: bool = False, name: Optional[str] = None) -> str:
        """Window means; count_include_pad (as PyTorch) divides by the whole window, padding
        counted, and False by the real taps only; ceil_mode as PyTorch."""
        return self.op("avg_pool2d", x, name=name, kernel=kernel, stride=stride, padding=padding,
                       count_include_pad=count_include_pad, ceil_mode=ceil_mode or None)

    def global_avg_pool2d(self, x: str, name: Optional[str] = None) -> str:
        """x [N, C, H, W] -> [N, C, 1, 1], the mean of each plane."""
        return self.op("global_avg_pool2d", x, name=name)

    # Shapes and reductions (tensor_ops.h, shape_ops.h, reduce.h) -----------------------------

    def dropout(self, x: str, p: float = 0.5, name: Optional[str] = None) -> str:
        """Inverted dropout in training mode (drop with probability p, scale by 1 / (1 - p)),
        the identity in inference mode."""
        return self.op("dropout", x, name=name, p=float(p))

    def batch_norm(self, x: str, running_mean: str, running_var: str,
                   weight: Optional[str] = None, bias: Optional[str] = None,
                   momentum: float = 0.1, epsilon: float = 1e-5,
                   name: Optional[str] = None) -> str:
        """Batch normalisation over axis 1 of [N, C] or [N, C, H, W] x, as torch.nn.BatchNorm:
        batch statistics in training mode (each step moves the running ones, states of shape
        [C], by `momentum`), the running ones in inference mode; weight and bias, [C], together
        or neither."""
        if (weight is None) != (bias is None):
            raise ValueError(f"node {name or 'batch_norm'!r}: batch_norm takes weight and bias "
                             "together, or neither")
        inputs = [x, running_mean, running_var] + ([weight, bias] if weight is not None else [])
        return self.op("batch_norm", *inputs, name=name, momentum=float(momentum),
                       epsilon=float(epsilon))

    def layer_norm(self, x: str, weight: Optional[str] = None, bias: Optional[str] = None,
                   normalized_ndim: Optional[int] = None, epsilon: float = 1e-5,
                   name: Optional[str] = None) -> str:
        """Layer normalisation over the trailing axes of x, as torch.nn.functional.layer_norm:
        their count is weight's rank when weight is given, else `normalized_ndim` (None: the
        gate's default, 1); weight and bias, of the shape of those axes, together or neither."""
        if (weight is None) != (bias is None):
            raise ValueError(f"node {name or 'layer_norm'!r}: layer_norm takes weight and bias "
                             "together, or neither")
        inputs = [x] + ([weight, bias] if weight is not None else [])
        ndim = None if normalized_ndim is None else int(normalized_ndim)
        return self.op("layer_norm", *inputs, name=name, normalized_ndim=ndim,
                       epsilon=float(epsilon))

    def flatten(self, x: str, axis: int = 1, name: Optional[str] = None) -> str:
        return self.op("flatten", x, name=name, axis=axis)

    def reshape(self, x: str, shape: Sequence[int], name: Optional[str] = None) -> str:
        return self.op("reshape", x, name=name, shape=list(shape))

    def transpose(self, x: str, perm: Optional[Sequence[int]] = None,
                  name: Optional[str] = None) -> str:
        return self.op("transpose", x, name=name, perm=perm)

    def concat(self, values: Iterable[str], axis: int, name: Optional[str] = None) -> str:
        return self.op("concat", *values, name=name, axis=axis)

    def slice(self, x: str, starts: Sequence[int], ends: Sequence[int],
              axes: Optional[Sequence[int]] = None, steps: Optional[Sequence[int]] = None,
              name: Optional[str] = None) -> str:
        """ONNX Slice: on axis axes[k] (None: 0, 1, ...), elements starts[k] up to ends[k]
        (exclusive), steps[k] apart (None: 1; negative walks backwards). Negative starts and ends
        count from the end and out-of-range ones are clamped, so 2**63 - 1 means "to the end". An
        open batch axis may only be taken whole (start 0, step 1, end 2**63 - 1)."""
        return self.op("slice", x, name=name, starts=list(starts), ends=list(ends),
                       axes=None if axes is None else list(axes),
                       steps=None if steps is None else list(steps))

    def pad(self, x: str, pads: Sequence[int], value: float = 0.0,
            name: Optional[str] = None) -> str:
        """ONNX Pad, constant mode: pads is [begin_0, ..., begin_(r-1), end_0, ..., end_(r-1)];
        added elements hold `value`, negative pads crop. The open batch axis cannot be padded."""
        return self.op("pad", x, name=name, pads=list(pads), value=float(value))

    def sum(self, x: str, axes: Optional[Sequence[int]] = None, keepdims: bool = False,
            name: Optional[str] = None) -> str:
        """Sum over `axes` (None: all)."""
        return self.op("sum", x, name=name, axes=axes, keepdims=keepdims or None)

    def mean(self, x: str, axes: Optional[Sequence[int]] = None, keepdims: bool = False,
             name: Optional[str] = None) -> str:
        """Mean over `axes` (None: all)."""
        return self.op("mean", x, name=name, axes=axes, keepdims=keepdims or None)

    # Losses and metrics (engine/gates/loss.h): labels are class ids stored as floats ---------

    def squared_error(self, y: str, t: str, reduction: str = "sum",
                      name: Optional[str] = None) -> str:
        """1/2 sum (y - t)^2, divided by the batch size if reduction is "mean"."""
        return self.op("squared_error", y, t, name=name, reduction=reduction)

    def softmax_cross_entropy(self, logits: str, labels: str, name: Optional[str] = None) -> str:
        """Mean cross-entropy of softmax(logits [N, C]) against labels [N] (class ids: int32,
        int64 or integral floats)."""
        return self.op("softmax_cross_entropy", logits, labels, name=name)

    def embedding(self, weight: str, ids: str, padding_idx: Optional[int] = None,
                  name: Optional[str] = None) -> str:
        """Rows of weight [num, dim] gathered by integer ids of any shape S: S + [dim].
        The row of `padding_idx` (if given) gets no gradient."""
        attrs = {} if padding_idx is None else {"padding_idx": int(padding_idx)}
        return self.op("embedding", weight, ids, name=name, **attrs)

    def sigmoid_cross_entropy(self, logits: str, targets: str, name: Optional[str] = None) -> str:
        return self.op("sigmoid_cross_entropy", logits, targets, name=name)

    def svm_hinge(self, scores: str, labels: str, margin: float = 1.0,
                  name: Optional[str] = None) -> str:
        return self.op("svm_hinge", scores, labels, name=name, margin=float(margin))

    def accuracy(self, logits: str, labels: str, name: Optional[str] = None) -> str:
        """Fraction of rows whose arg-max logit is the label (no gradient)."""
        return self.op("accuracy", logits, labels, name=name)

    # Internals -----------------------------------------------------------------------------

    def _claim(self, name: str) -> None:
        if not name:
            raise ValueError("a tensor name must not be empty")
        if name in self._names:
            raise ValueError(f"name {name!r} is already used in graph {self._graph.name!r}")
        self._names.add(name)

    def _check_defined(self, value: str, role: str) -> None:
        if value not in self._names:
            raise ValueError(f"{role} {value!r} is not a tensor of graph {self._graph.name!r}")

    def _fresh_name(self, op: str) -> str:
        k = 1
        while f"{op}_{k}" in self._names:
            k += 1
        return f"{op}_{k}"


def parse_graph(text: str) -> Graph:
    """Parses a Graph from protobuf text format (as in models/*.pbtxt).

    Raises:
        google.protobuf.text_format.ParseError: the text is not a valid Graph.
    """
    return text_format.Parse(text, Graph())


def load_graph(path: str) -> Graph:
    """Reads a Graph from a protobuf text file such as models/lenet5.pbtxt."""
    with open(path, encoding="utf-8") as f:
        return parse_graph(f.read())


__all__ = ["Graph", "GraphBuilder", "InitSpec", "Initializer", "attr_value", "load_graph",
           "make_initializer", "parse_graph"]
