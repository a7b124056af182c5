#!/usr/bin/python3
"""Writes models/resnet_fmnist.pbtxt and models/transformer_repeat.pbtxt with the Python
GraphBuilder (clients/python/backflow/graph.py), so the two graphs can be regenerated and read.

    PYTHONPATH=build/release/python scripts/generate-models.py [--out models]

The text files are what the server, the tests and bench/ read; this script only writes them.
Architectures (bench/pytorch_bench.py and bench/learn hold the same models in PyTorch):

resnet_fmnist: a small ResNet (He et al., 2015) for [N, 1, 28, 28] Fashion-MNIST.
    stem   conv 3x3, 16, stride 2, padding 1, batch norm, relu   [N, 16, 14, 14]
    block1 basic block, 16 channels (conv-bn-relu-conv-bn, identity shortcut, relu)
    block2 basic block 16 -> 32, stride 2, shortcut a 1x1 conv with stride 2 and batch norm
                                                                   [N, 32, 7, 7]
    global average pool, flatten, linear 32 -> 10 = logits; softmax cross-entropy against int64
    labels. Convolutions have no bias (batch norm follows each); He initialisation for them,
    Glorot for the classifier, batch norm weight 1 and bias 0, running mean 0 and variance 1.

transformer_repeat: a 2-layer pre-norm Transformer encoder (Vaswani et al., 2017) over int64
token ids [N, 8] from a vocabulary of 16, classifying whether any token occurs twice.
    x = embedding(ids) + pos                                       [N, 8, 32]
    twice: x = x + dropout(attention(layer_norm(x)))               2 heads of 16
           x = x + dropout(linear(gelu(linear(layer_norm(x)))))    MLP 32 -> 64 -> 32
    logits = linear(mean over the sequence of layer_norm(x))       [N, 2]
    attention: q, k, v = linear(x) each, split into heads with reshape and transpose,
    softmax(q k^T / sqrt(16)) v, heads joined again, an output linear.
"""

import argparse
import math
import os

from google.protobuf import text_format

from backflow import GraphBuilder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VOCAB, SEQ, DIM, HEADS, MLP, LAYERS, DROPOUT = 16, 8, 32, 2, 64, 2, 0.1


def conv_bn(g, x, name, cin, cout, kernel, stride, relu):
    """conv (no bias) -> batch norm (affine) [-> relu]."""
    w = g.parameter(f"{name}_w", [cout, cin, kernel, kernel], init="he")
    pad = kernel // 2
    y = g.conv2d(x, w, stride=[stride, stride], padding=[pad, pad], name=f"{name}_conv")
    mean = g.state(f"{name}_bn_mean", [cout])
    var = g.state(f"{name}_bn_var", [cout], init=1.0)
    gamma = g.parameter(f"{name}_bn_w", [cout], init=1.0)
    beta = g.parameter(f"{name}_bn_b", [cout])
    y = g.batch_norm(y, mean, var, gamma, beta, name=f"{name}_bn")
    return g.relu(y, name=f"{name}_relu") if relu else y


def basic_block(g, x, name, cin, cout, stride):
    h = conv_bn(g, x, f"{name}a", cin, cout, 3, stride, relu=True)
    h = conv_bn(g, h, f"{name}b", cout, cout, 3, 1, relu=False)
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = conv_bn(g, x, f"{name}p", cin, cout, 1, stride, relu=False)
    return g.relu(g.add(h, shortcut, name=f"{name}_sum"), name=f"{name}_out")


def resnet():
    g = GraphBuilder("resnet_fmnist")
    images = g.placeholder("images", [-1, 1, 28, 28])
    labels = g.placeholder("labels", [-1], dtype="int64")
    x = conv_bn(g, images, "stem", 1, 16, 3, 2, relu=True)
    x = basic_block(g, x, "block1", 16, 16, 1)
    x = basic_block(g, x, "block2", 16, 32, 2)
    pooled = g.flatten(g.global_avg_pool2d(x, name="pool"), name="pool_flat")
    w = g.parameter("fc_w", [32, 10], init="glorot")
    b = g.parameter("fc_b", [10])
    logits = g.linear(pooled, w, b, name="logits")
    g.loss(g.softmax_cross_entropy(logits, labels, name="loss"))
    g.output(logits, g.accuracy(logits, labels, name="accuracy"))
    return g.build()


def linear(g, x, name, fan_in, fan_out):
    w = g.parameter(f"{name}_w", [fan_in, fan_out], init="glorot")
    b = g.parameter(f"{name}_b", [fan_out])
    return g.linear(x, w, b, name=name)


def norm(g, x, name):
    w = g.parameter(f"{name}_w", [DIM], init=1.0)
    b = g.parameter(f"{name}_b", [DIM])
    return g.layer_norm(x, w, b, name=name)


def heads(g, x, name):
    """[N, SEQ, DIM] -> [N, HEADS, SEQ, DIM / HEADS]."""
    split = g.reshape(x, [-1, SEQ, HEADS, DIM // HEADS], name=f"{name}_split")
    return g.transpose(split, [0, 2, 1, 3], name=f"{name}_heads")


def attention(g, x, name):
    q, k, v = (heads(g, linear(g, x, f"{name}_{p}", DIM, DIM), f"{name}_{p}") for p in "qkv")
    scores = g.matmul(q, k, transpose_b=True, name=f"{name}_scores")
    scaled = g.mul_scalar(scores, 1.0 / math.sqrt(DIM // HEADS), name=f"{name}_scaled")
    weights = g.softmax(scaled, axis=-1, name=f"{name}_weights")
    context = g.matmul(weights, v, name=f"{name}_context")
    joined = g.transpose(context, [0, 2, 1, 3], name=f"{name}_joined")
    merged = g.reshape(joined, [-1, SEQ, DIM], name=f"{name}_merged")
    return linear(g, merged, f"{name}_o", DIM, DIM)


def encoder_layer(g, x, name):
    a = attention(g, norm(g, x, f"{name}_ln1"), f"{name}_attn")
    x = g.add(x, g.dropout(a, DROPOUT, name=f"{name}_attn_drop"), name=f"{name}_res1")
    h = linear(g, norm(g, x, f"{name}_ln2"), f"{name}_fc1", DIM, MLP)
    h = linear(g, g.gelu(h, name=f"{name}_gelu"), f"{name}_fc2", MLP, DIM)
    return g.add(x, g.dropout(h, DROPOUT, name=f"{name}_mlp_drop"), name=f"{name}_res2")


def transformer():
    g = GraphBuilder("transformer_repeat")
    ids = g.placeholder("ids", [-1, SEQ], dtype="int64")
    labels = g.placeholder("labels", [-1], dtype="int64")
    table = g.parameter("embed_w", [VOCAB, DIM], init=("normal", 0.0, 1.0))
    pos = g.parameter("pos", [SEQ, DIM], init=("normal", 0.0, 0.1))
    x = g.add(g.embedding(table, ids, name="embed"), pos, name="x0")
    for layer in range(LAYERS):
        x = encoder_layer(g, x, f"l{layer}")
    pooled = g.mean(norm(g, x, "ln_f"), axes=[1], name="pooled")
    logits = linear(g, pooled, "logits", DIM, 2)
    g.loss(g.softmax_cross_entropy(logits, labels, name="loss"))
    g.output(logits, g.accuracy(logits, labels, name="accuracy"))
    return g.build()


def compact(graph):
    """The graph as text format with one line per placeholder, parameter, state and node."""
    lines = []
    for field, value in graph.ListFields():
        repeated = field.label == field.LABEL_REPEATED
        for item in value if repeated else [value]:
            if field.message_type is not None:
                body = text_format.MessageToString(item, as_one_line=True)
                lines.append(f"{field.name} {{ {body} }}")
            else:
                single = type(graph)(**{field.name: [item] if repeated else item})
                lines.append(text_format.MessageToString(single, as_one_line=True))
    return "\n".join(lines) + "\n"


def header(doc_section):
    return "".join(f"# {line}".rstrip() + "\n" for line in doc_section.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "models"))
    args = parser.parse_args()
    sections = __doc__.split("\n\n")
    docs = {"resnet_fmnist": sections[3], "transformer_repeat": sections[4]}
    for name, build in (("resnet_fmnist", resnet), ("transformer_repeat", transformer)):
        text = header("Generated by scripts/generate-models.py; edit that, not this.\n\n"
                      + docs[name].strip()) + compact(build())
        with open(os.path.join(args.out, name + ".pbtxt"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
