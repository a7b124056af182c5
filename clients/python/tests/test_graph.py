"""backflow.graph: GraphBuilder and the text-format loader, without a server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backflow import GraphBuilder, load_graph, make_initializer, to_numpy
from backflow.graph import attr_value, parse_graph
from backflow.v1 import graph_pb2, tensor_pb2


def build_lenet5() -> graph_pb2.Graph:
    """models/lenet5.pbtxt, written with the builder."""
    g = GraphBuilder("lenet5")
    images = g.placeholder("images", [-1, 1, 28, 28])
    labels = g.placeholder("labels", [-1])
    shapes = {"c1": ([6, 1, 5, 5], "he"), "c3": ([16, 6, 5, 5], "he"), "f5": ([400, 120], "he"),
              "f6": ([120, 84], "he"), "f7": ([84, 10], "glorot")}
    for layer, (shape, init) in shapes.items():
        g.parameter(f"{layer}_w", shape, init=init)
        g.parameter(f"{layer}_b", [shape[0] if layer.startswith("c") else shape[1]])
    c1 = g.relu(g.conv2d(images, "c1_w", "c1_b", padding=[2, 2], name="c1"), name="c1_relu")
    s2 = g.max_pool2d(c1, kernel=[2, 2], stride=[2, 2], name="s2")
    c3 = g.relu(g.conv2d(s2, "c3_w", "c3_b", name="c3"), name="c3_relu")
    s4 = g.max_pool2d(c3, kernel=[2, 2], stride=[2, 2], name="s4")
    flat = g.flatten(s4, axis=1, name="s4_flat")
    f5 = g.relu(g.linear(flat, "f5_w", "f5_b", name="f5"), name="f5_relu")
    f6 = g.relu(g.linear(f5, "f6_w", "f6_b", name="f6"), name="f6_relu")
    logits = g.linear(f6, "f7_w", "f7_b", name="logits")
    loss = g.softmax_cross_entropy(logits, labels, name="loss")
    g.output(logits, g.accuracy(logits, labels, name="accuracy"))
    g.loss(loss)
    return g.build()


def build_mlp_tanh() -> graph_pb2.Graph:
    """models/mlp_tanh.pbtxt, written with the builder."""
    g = GraphBuilder("mlp_tanh")
    images = g.placeholder("images", [-1, 1, 28, 28])
    labels = g.placeholder("labels", [-1])
    g.parameter("w1", [784, 256], init="glorot")
    g.parameter("b1", [256])
    g.parameter("w2", [256, 10], init="glorot")
    g.parameter("b2", [10])
    x = g.flatten(images, name="x")
    h = g.tanh(g.linear(x, "w1", "b1", name="h_pre"), name="h")
    logits = g.linear(h, "w2", "b2", name="logits")
    loss = g.softmax_cross_entropy(logits, labels, name="loss")
    g.output(logits, g.accuracy(logits, labels, name="accuracy"))
    g.loss(loss)
    return g.build()


@pytest.mark.parametrize("model,build", [("lenet5", build_lenet5), ("mlp_tanh", build_mlp_tanh)])
def test_builder_reproduces_the_model_files(source_dir: Path, model: str, build) -> None:
    expected = load_graph(str(source_dir / "models" / f"{model}.pbtxt"))
    built = build()
    # Parameters are declared in another order above; the graph's meaning does not depend on it.
    for graph in (expected, built):
        ordered = sorted(graph.parameters, key=lambda p: p.name)
        del graph.parameters[:]
        graph.parameters.extend(ordered)
    assert built == expected


def test_unnamed_nodes_get_fresh_names_and_attributes_are_typed() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 3])
    a = g.mul_scalar(x, 2)
    b = g.mul_scalar(a, -1)
    s = g.sum(b, axes=[1], keepdims=True)
    m = g.matmul(x, x, transpose_b=True)
    graph = g.build()
    assert (a, b, s, m) == ("mul_scalar_1", "mul_scalar_2", "sum_1", "matmul_1")
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["mul_scalar_1"].attrs["a"].WhichOneof("value") == "f"
    assert nodes["mul_scalar_1"].attrs["a"].f == 2.0
    assert list(nodes["sum_1"].attrs["axes"].ints.values) == [1]
    assert nodes["sum_1"].attrs["keepdims"].i == 1
    assert set(nodes["matmul_1"].attrs) == {"transpose_b"}  # the False flag is left out
    assert list(nodes["matmul_1"].inputs) == ["x", "x"]


def test_avg_pool2d_sends_count_include_pad() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 3, 8, 8])
    g.avg_pool2d(x, kernel=[3, 3], padding=[1, 1], name="inc")
    g.avg_pool2d(x, kernel=[3, 3], padding=[1, 1], count_include_pad=False, name="exc")
    nodes = {n.name: n for n in g.build().nodes}
    assert nodes["inc"].attrs["count_include_pad"].i == 1
    assert nodes["exc"].attrs["count_include_pad"].i == 0
    assert list(nodes["exc"].attrs["padding"].ints.values) == [1, 1]


def test_avg_pool2d_sends_ceil_mode_only_when_set() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 3, 7, 7])
    g.avg_pool2d(x, kernel=[2, 2], ceil_mode=True, name="ceil")
    g.avg_pool2d(x, kernel=[2, 2], name="floor")
    nodes = {n.name: n for n in g.build().nodes}
    assert nodes["ceil"].attrs["ceil_mode"].i == 1
    assert "ceil_mode" not in nodes["floor"].attrs


def test_max_pool2d_sends_dilation_and_ceil_mode() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 3, 8, 8])
    g.max_pool2d(x, kernel=[2, 2], name="plain")
    g.max_pool2d(x, kernel=[2, 2], dilation=[2, 3], ceil_mode=True, name="wide")
    nodes = {n.name: n for n in g.build().nodes}
    assert set(nodes["plain"].attrs) == {"kernel"}
    assert list(nodes["wide"].attrs["dilation"].ints.values) == [2, 3]
    assert nodes["wide"].attrs["ceil_mode"].i == 1


def test_conv2d_sends_groups_only_when_grouped() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 4, 8, 8])
    g.conv2d(x, g.parameter("w", [4, 4, 3, 3]), name="dense")
    g.conv2d(x, g.parameter("dw", [4, 1, 3, 3]), groups=4, name="depthwise")
    nodes = {n.name: n for n in g.build().nodes}
    assert "groups" not in nodes["dense"].attrs
    assert nodes["depthwise"].attrs["groups"].i == 4


def test_global_avg_pool2d_has_no_attributes() -> None:
    g = GraphBuilder("g")
    y = g.global_avg_pool2d(g.placeholder("x", [-1, 3, 8, 8]))
    node = g.build().nodes[0]
    assert (y, node.op, list(node.inputs), len(node.attrs)) == (
        "global_avg_pool2d_1", "global_avg_pool2d", ["x"], 0)


def test_erf_node() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [2])
    e = g.erf(x)
    nodes = {n.name: n for n in g.build().nodes}
    assert e == "erf_1"
    assert nodes[e].op == "erf"
    assert list(nodes[e].inputs) == ["x"]
    assert not nodes[e].attrs


def test_gelu_node() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [2])
    a = g.gelu(x)
    b = g.gelu(x, approximate="tanh")
    nodes = {n.name: n for n in g.build().nodes}
    assert (a, b) == ("gelu_1", "gelu_2")
    assert nodes[a].op == "gelu" and nodes[a].attrs["approximate"].s == "none"
    assert nodes[b].attrs["approximate"].s == "tanh"


def test_clip_node_carries_only_the_given_bounds() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [2])
    a = g.clip(x, min=-1, max=1)
    b = g.clip(x, max=2)
    nodes = {n.name: n for n in g.build().nodes}
    assert nodes[a].attrs["min"].f == -1.0 and nodes[a].attrs["max"].f == 1.0
    assert set(nodes[b].attrs) == {"max"} and nodes[b].attrs["max"].f == 2.0


def test_softmax_nodes_carry_the_axis() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [2, 3])
    a = g.softmax(x)
    b = g.log_softmax(x, axis=0)
    nodes = {n.name: n for n in g.build().nodes}
    assert nodes[a].op == "softmax" and nodes[a].attrs["axis"].i == -1
    assert nodes[b].op == "log_softmax" and nodes[b].attrs["axis"].i == 0


def test_builder_rejects_duplicates_and_undefined_inputs() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x")
    with pytest.raises(ValueError, match="'x' is already used"):
        g.parameter("x")
    with pytest.raises(ValueError, match="node 'h': input 'y' is not defined"):
        g.add(x, "y", name="h")
    with pytest.raises(ValueError, match="loss 'nope'"):
        g.loss("nope")
    assert [n.name for n in g.build().nodes] == []  # the failed add left nothing behind


def test_state_and_batch_norm() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 3, 5, 5])
    mean = g.state("bn_mean", [3])
    var = g.state("bn_var", [3], init=1.0)
    g.parameter("bn_w", [3], init=1.0)
    g.parameter("bn_b", [3])
    affine = g.batch_norm(x, mean, var, "bn_w", "bn_b", momentum=0.2, name="bn")
    plain = g.batch_norm(affine, mean, var, epsilon=1e-3)
    with pytest.raises(ValueError, match="weight and bias"):
        g.batch_norm(x, mean, var, weight="bn_w")
    with pytest.raises(ValueError, match="'bn_mean' is already used"):
        g.state("bn_mean", [3])
    graph = g.build()
    assert [(s.name, list(s.shape)) for s in graph.states] == [("bn_mean", [3]), ("bn_var", [3])]
    assert not graph.states[0].HasField("init")
    assert graph.states[1].init.constant.value == 1.0
    assert [p.name for p in graph.parameters] == ["bn_w", "bn_b"]
    nodes = {n.name: n for n in graph.nodes}
    assert (affine, plain) == ("bn", "batch_norm_1")
    assert list(nodes["bn"].inputs) == ["x", "bn_mean", "bn_var", "bn_w", "bn_b"]
    assert nodes["bn"].attrs["momentum"].f == pytest.approx(0.2)
    assert list(nodes["batch_norm_1"].inputs) == ["bn", "bn_mean", "bn_var"]
    assert nodes["batch_norm_1"].attrs["epsilon"].f == pytest.approx(1e-3)
    assert nodes["batch_norm_1"].attrs["momentum"].f == pytest.approx(0.1)


def test_layer_norm() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 3, 4])
    g.parameter("ln_w", [3, 4], init=1.0)
    g.parameter("ln_b", [3, 4])
    affine = g.layer_norm(x, "ln_w", "ln_b", name="ln")
    plain = g.layer_norm(affine, normalized_ndim=2, epsilon=1e-3)
    default = g.layer_norm(plain)
    with pytest.raises(ValueError, match="weight and bias"):
        g.layer_norm(x, bias="ln_b")
    nodes = {n.name: n for n in g.build().nodes}
    assert (affine, plain, default) == ("ln", "layer_norm_1", "layer_norm_2")
    assert nodes["ln"].op == "layer_norm"
    assert list(nodes["ln"].inputs) == ["x", "ln_w", "ln_b"]
    assert "normalized_ndim" not in nodes["ln"].attrs
    assert nodes["ln"].attrs["epsilon"].f == pytest.approx(1e-5)
    assert list(nodes["layer_norm_1"].inputs) == ["ln"]
    assert nodes["layer_norm_1"].attrs["normalized_ndim"].i == 2
    assert nodes["layer_norm_1"].attrs["epsilon"].f == pytest.approx(1e-3)
    assert "normalized_ndim" not in nodes["layer_norm_2"].attrs


def test_initializers() -> None:
    assert make_initializer("zeros").WhichOneof("kind") == "zeros"
    normal_he = make_initializer("he_normal").he
    assert normal_he.distribution == graph_pb2.Initializer.DISTRIBUTION_NORMAL
    normal = make_initializer(("normal", 0.5, 2.0))
    assert (normal.normal.mean, normal.normal.stddev) == (0.5, 2.0)
    uniform = make_initializer(("uniform", -1, 1))
    assert (uniform.uniform.low, uniform.uniform.high) == (-1.0, 1.0)
    assert make_initializer(3).constant.value == 3.0
    explicit = make_initializer(np.arange(6.0).reshape(2, 3), shape=[2, 3])
    np.testing.assert_array_equal(to_numpy(explicit.value), np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match="shape \\[3\\], parameter has \\[2\\]"):
        make_initializer([1, 2, 3], shape=[2])
    with pytest.raises(ValueError, match="unknown initializer 'xavier'"):
        make_initializer("xavier")
    with pytest.raises(ValueError, match="expected"):
        make_initializer(("normal", 1.0))


def test_attr_values() -> None:
    assert attr_value(True).i == 1
    assert attr_value(np.int64(3)).i == 3
    assert attr_value(0.25).f == 0.25
    assert attr_value("mean").s == "mean"
    assert list(attr_value((2, 2)).ints.values) == [2, 2]
    assert list(attr_value([1, 0.5]).floats.values) == [1.0, 0.5]
    with pytest.raises(TypeError, match="attribute value"):
        attr_value({"a": 1})


def test_parse_graph_reads_text_format() -> None:
    graph = parse_graph('name: "t" placeholders { name: "x" } '
                        'nodes { name: "y" op: "square" inputs: "x" } outputs: "y" loss: "y"')
    assert graph.name == "t" and graph.nodes[0].op == "square" and graph.loss == "y"


def test_integer_placeholders_and_embedding() -> None:
    g = GraphBuilder("emb")
    ids = g.placeholder("ids", [-1, 2], dtype="int64")
    labels = g.placeholder("labels", [-1], dtype=np.int32)
    x = g.placeholder("x", [-1, 3], dtype="float32")
    w = g.parameter("w", [5, 3])
    g.embedding(w, ids, name="e")
    g.embedding(w, ids, padding_idx=0, name="padded")
    graph = g.build()
    assert [p.dtype for p in graph.placeholders] == [
        tensor_pb2.INT64, tensor_pb2.INT32, tensor_pb2.FLOAT32]
    assert labels == "labels" and x == "x"
    e, padded = graph.nodes
    assert (e.op, list(e.inputs), dict(e.attrs)) == ("embedding", ["w", "ids"], {})
    assert padded.attrs["padding_idx"].i == 0
    with pytest.raises(ValueError, match="int32 or int64"):
        g.placeholder("bad", [2], dtype="int16")


def test_slice_and_pad_nodes() -> None:
    g = GraphBuilder("g")
    x = g.placeholder("x", [-1, 3, 4])
    a = g.slice(x, starts=[1], ends=[2**63 - 1], axes=[-1])
    b = g.slice(a, starts=[-1, 0], ends=[-2**63, 3], axes=[2, 1], steps=[-2, 2], name="rev")
    c = g.pad(b, pads=[0, 1, -1, 0, 2, 0])
    d = g.pad(c, pads=(0, 0, 1, 0, 0, 1), value=-1.5, name="padded")
    nodes = {n.name: n for n in g.build().nodes}
    assert (a, b, c, d) == ("slice_1", "rev", "pad_1", "padded")
    assert (nodes[a].op, list(nodes[a].inputs)) == ("slice", ["x"])
    assert set(nodes[a].attrs) == {"starts", "ends", "axes"}  # steps left to the default
    assert list(nodes[a].attrs["ends"].ints.values) == [2**63 - 1]
    assert list(nodes["rev"].attrs["ends"].ints.values) == [-2**63, 3]
    assert list(nodes["rev"].attrs["steps"].ints.values) == [-2, 2]
    assert list(nodes["rev"].attrs["axes"].ints.values) == [2, 1]
    assert nodes[c].op == "pad" and list(nodes[c].attrs["pads"].ints.values) == [0, 1, -1, 0, 2, 0]
    assert nodes[c].attrs["value"].WhichOneof("value") == "f" and nodes[c].attrs["value"].f == 0.0
    assert nodes["padded"].attrs["value"].f == -1.5
