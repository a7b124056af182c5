#!/usr/bin/env python3
"""PyTorch parity fixtures for tests/engine/parity/parity_test.cc.

Regenerate (needs torch; run by hand, never in CI, and commit the JSON it writes):

    /usr/bin/python3 tests/engine/parity/generate.py

It writes one fixture per network into tests/engine/parity/ (the directory of this script):

    resnet.json               conv -> BN -> relu, two residual basic blocks (the second with
                              stride 2 and a 1x1 projection shortcut), global average pool,
                              linear, softmax cross-entropy; SGD with momentum and weight decay
    depthwise.json            conv -> BN -> relu -> depthwise conv (groups = C) -> BN -> relu ->
                              pointwise 1x1 conv -> BN -> relu -> global average pool -> linear;
                              Adam with weight decay
    transformer.json          token embedding + learned positions, two post-norm encoder layers
                              (2-head self-attention from linear, reshape, transpose, batched
                              matmul, scale and softmax; residuals; layer norm; GELU MLP), mean
                              over time, linear classifier; dropout p = 0; Adam. The key
                              projection has no bias: softmax over the keys cancels it, so its
                              gradient is identically zero and only rounding noise would remain,
                              which Adam divides by its epsilon (1e-8) into updates of 1e-11
    transformer_dropout.json  the same network with dropout p = 0.2 after the attention weights,
                              the attention projection, the GELU and the MLP output; SGD

Each fixture is a JSON object:

    name, graph (backflow's protobuf text format), seed (the Trainer's model seed, which keys
    the dropout masks), optimizer {kind, learning_rate, momentum, weight_decay, beta1, beta2,
    epsilon}, steps (5), inputs {placeholder: tensor}, parameters and state (the initial
    values, state being batch norm's running statistics), loss (torch's float64 loss on the
    initial parameters), gradients (of every parameter there), losses (the loss each of the
    5 optimizer steps computed, before its update), final_parameters and final_state (after
    the 5 steps), inference {output: tensor} (the named outputs in inference mode after
    the 5 steps: batch norm reads its running statistics, dropout is the identity).

A tensor is {"dtype": "float64" | "int64", "shape": [...], "values": [row-major]}; floats are
written with Python's repr, which round-trips float64 exactly. Every step trains on the same
batch. Torch computes in float64 throughout.

Parameters are kept in backflow's layouts in torch too (linear weights [in, out], used as
x @ w), so no value is transposed on the way out.

Dropout: backflow's mask is a function of (model seed, optimizer step, node name), Note
[Dropout masks are a function of seed, step and node] in engine/gates/dropout.h. dropout_mask()
below reimplements it bit for bit; the Trainer runs step s (s = 0 for the first Step, which is
also what ComputeGradients on the initial parameters uses) with RunInfo.step = s and
RunInfo.seed = TrainerOptions.seed, so torch applies the same mask in the same step.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

STEPS = 5
SEED = 7
HERE = os.path.dirname(os.path.abspath(__file__))
M64 = (1 << 64) - 1


# ---- backflow's dropout mask (engine/gates/dropout.cc), bit-exact -----------------------------

def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _fnv1a(text):
    h = 0xCBF29CE484222325
    for c in text.encode():
        h = ((h ^ c) * 0x100000001B3) & M64
    return h


def dropout_mask(seed, step, node, n, p):
    key = _mix((seed ^ _mix((step & M64) ^ _fnv1a(node))) & M64)
    keep = []
    for i in range(n):
        bits = _mix((key + i * 0x9E3779B97F4A7C15) & M64)
        keep.append((bits >> 11) * 2.0 ** -53 >= p)
    return keep


class Context:
    """What one forward pass needs beyond the parameters: mode, step and batch norm state."""

    def __init__(self, training, step, state):
        self.training = training
        self.step = step
        self.state = state  # name -> tensor, updated in place by training batch norm

    def dropout(self, node, x, p):
        if not self.training or p == 0.0:
            return x
        keep = dropout_mask(SEED, self.step, node, x.numel(), p)
        mask = torch.tensor(keep, dtype=x.dtype).reshape(x.shape)
        return x * mask * (1.0 / (1.0 - p))

    def batch_norm(self, name, x, P):
        return F.batch_norm(x, self.state[name + "_mean"], self.state[name + "_var"],
                            P[name + "_w"], P[name + "_b"], training=self.training,
                            momentum=0.1, eps=1e-5)


# ---- backflow graph text ----------------------------------------------------------------------

class GraphText:
    def __init__(self, name):
        self.lines = ['name: "%s"' % name]

    def placeholder(self, name, shape, dtype=None):
        extra = " dtype: %s" % dtype if dtype else ""
        self.lines.append('placeholders { name: "%s" shape: %s%s }' % (name, list(shape), extra))

    def parameter(self, name, shape):
        self.lines.append('parameters { name: "%s" shape: %s }' % (name, list(shape)))

    def state(self, name, shape, value):
        self.lines.append('states { name: "%s" shape: %s init { constant { value: %r } } }'
                          % (name, list(shape), value))

    def node(self, name, op, inputs, **attrs):
        parts = ['nodes { name: "%s" op: "%s" inputs: [%s]'
                 % (name, op, ", ".join('"%s"' % i for i in inputs))]
        for key, value in attrs.items():
            if isinstance(value, (list, tuple)):
                v = "ints { values: %s }" % list(value)
            elif isinstance(value, float):
                v = "f: %r" % value
            elif isinstance(value, str):
                v = 's: "%s"' % value
            else:
                v = "i: %d" % value
            parts.append(' attrs { key: "%s" value { %s } }' % (key, v))
        self.lines.append("".join(parts) + " }")
        return name

    def finish(self, outputs, loss):
        self.lines.append("outputs: [%s]" % ", ".join('"%s"' % o for o in outputs))
        self.lines.append('loss: "%s"' % loss)
        return "\n".join(self.lines) + "\n"


# ---- networks: each returns (graph text, parameter shapes, state init, forward(P, ctx, X)) ---

def conv_bn(g, shapes, states, name, x, cin, cout, k, stride=1, groups=1, relu=True):
    pad = k // 2
    g.parameter(name + "_conv_w", [cout, cin // groups, k, k])
    shapes[name + "_conv_w"] = [cout, cin // groups, k, k]
    g.node(name + "_conv", "conv2d", [x, name + "_conv_w"], stride=[stride, stride],
           padding=[pad, pad], groups=groups)
    for suffix in ("_bn_w", "_bn_b"):
        g.parameter(name + suffix, [cout])
        shapes[name + suffix] = [cout]
    g.state(name + "_bn_mean", [cout], 0.0)
    g.state(name + "_bn_var", [cout], 1.0)
    states[name + "_bn"] = cout
    g.node(name + "_bn", "batch_norm", [name + "_conv", name + "_bn_mean", name + "_bn_var",
                                        name + "_bn_w", name + "_bn_b"])
    if not relu:
        return name + "_bn"
    return g.node(name + "_relu", "relu", [name + "_bn"])


def torch_conv_bn(P, ctx, name, x, stride=1, groups=1, relu=True):
    w = P[name + "_conv_w"]
    y = F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)
    y = ctx.batch_norm(name + "_bn", y, P)
    return F.relu(y) if relu else y


def classifier_head(g, shapes, x, features, classes):
    g.node("pool", "global_avg_pool2d", [x])
    g.node("flat", "flatten", ["pool"], axis=1)
    g.parameter("fc_w", [features, classes])
    g.parameter("fc_b", [classes])
    shapes["fc_w"] = [features, classes]
    shapes["fc_b"] = [classes]
    g.node("logits", "linear", ["flat", "fc_w", "fc_b"])
    g.node("loss", "softmax_cross_entropy", ["logits", "labels"])
    return g.finish(["logits"], "loss")


def resnet():
    g, shapes, states = GraphText("parity_resnet"), {}, {}
    g.placeholder("images", [-1, 3, 8, 8])
    g.placeholder("labels", [-1], "INT64")
    x = conv_bn(g, shapes, states, "stem", "images", 3, 4, 3)
    a = conv_bn(g, shapes, states, "b1a", x, 4, 4, 3)
    b = conv_bn(g, shapes, states, "b1b", a, 4, 4, 3, relu=False)
    g.node("b1_add", "add", [b, x])
    x = g.node("b1_relu", "relu", ["b1_add"])
    a = conv_bn(g, shapes, states, "b2a", x, 4, 8, 3, stride=2)
    b = conv_bn(g, shapes, states, "b2b", a, 8, 8, 3, relu=False)
    s = conv_bn(g, shapes, states, "b2s", x, 4, 8, 1, stride=2, relu=False)
    g.node("b2_add", "add", [b, s])
    x = g.node("b2_relu", "relu", ["b2_add"])
    text = classifier_head(g, shapes, x, 8, 3)

    def forward(P, ctx, X):
        x = torch_conv_bn(P, ctx, "stem", X["images"])
        a = torch_conv_bn(P, ctx, "b1a", x)
        x = F.relu(torch_conv_bn(P, ctx, "b1b", a, relu=False) + x)
        a = torch_conv_bn(P, ctx, "b2a", x, stride=2)
        b = torch_conv_bn(P, ctx, "b2b", a, relu=False)
        s = torch_conv_bn(P, ctx, "b2s", x, stride=2, relu=False)
        x = F.relu(b + s)
        logits = x.mean(dim=(2, 3)) @ P["fc_w"] + P["fc_b"]
        return {"logits": logits}, F.cross_entropy(logits, X["labels"])

    gen = torch.Generator().manual_seed(1)
    inputs = {"images": torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64),
              "labels": torch.tensor([0, 2, 1, 2], dtype=torch.int64)}
    optimizer = {"kind": "sgd", "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 5e-4}
    return text, shapes, states, forward, inputs, optimizer


def depthwise():
    g, shapes, states = GraphText("parity_depthwise"), {}, {}
    g.placeholder("images", [-1, 3, 8, 8])
    g.placeholder("labels", [-1], "INT64")
    x = conv_bn(g, shapes, states, "stem", "images", 3, 6, 3)
    x = conv_bn(g, shapes, states, "dw", x, 6, 6, 3, groups=6)
    x = conv_bn(g, shapes, states, "pw", x, 6, 10, 1)
    text = classifier_head(g, shapes, x, 10, 3)

    def forward(P, ctx, X):
        x = torch_conv_bn(P, ctx, "stem", X["images"])
        x = torch_conv_bn(P, ctx, "dw", x, groups=6)
        x = torch_conv_bn(P, ctx, "pw", x)
        logits = x.mean(dim=(2, 3)) @ P["fc_w"] + P["fc_b"]
        return {"logits": logits}, F.cross_entropy(logits, X["labels"])

    gen = torch.Generator().manual_seed(2)
    inputs = {"images": torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64),
              "labels": torch.tensor([1, 0, 2, 1], dtype=torch.int64)}
    optimizer = {"kind": "adam", "learning_rate": 0.01, "weight_decay": 1e-3,
                 "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    return text, shapes, states, forward, inputs, optimizer


D, HEADS, FF, T, VOCAB, CLASSES = 8, 2, 16, 5, 11, 4


def encoder_layer_graph(g, shapes, i, x, p):
    hd = D // HEADS

    def lin(name, src, fin, fout, bias=True):
        g.parameter(name + "_w", [fin, fout])
        shapes[name + "_w"] = [fin, fout]
        if not bias:
            return g.node(name, "linear", [src, name + "_w"])
        g.parameter(name + "_b", [fout])
        shapes[name + "_b"] = [fout]
        return g.node(name, "linear", [src, name + "_w", name + "_b"])

    def heads(name):  # [N, T, D] -> [N, H, T, hd]
        lin(name, x, D, D, bias=not name.endswith("k"))
        g.node(name + "_split", "reshape", [name], shape=[0, 0, HEADS, hd])
        return g.node(name + "_heads", "transpose", [name + "_split"], perm=[0, 2, 1, 3])

    L = "l%d_" % i
    q, k, v = heads(L + "q"), heads(L + "k"), heads(L + "v")
    g.node(L + "scores", "matmul", [q, k], transpose_b=1)
    g.node(L + "scaled", "mul_scalar", [L + "scores"], a=1.0 / math.sqrt(hd))
    g.node(L + "attn", "softmax", [L + "scaled"], axis=-1)
    g.node(L + "attn_drop", "dropout", [L + "attn"], p=p)
    g.node(L + "ctx", "matmul", [L + "attn_drop", v])
    g.node(L + "ctx_t", "transpose", [L + "ctx"], perm=[0, 2, 1, 3])
    g.node(L + "ctx_m", "reshape", [L + "ctx_t"], shape=[0, 0, D])
    lin(L + "o", L + "ctx_m", D, D)
    g.node(L + "o_drop", "dropout", [L + "o"], p=p)
    g.node(L + "res1", "add", [x, L + "o_drop"])
    for ln in ("ln1", "ln2"):
        g.parameter(L + ln + "_w", [D])
        g.parameter(L + ln + "_b", [D])
        shapes[L + ln + "_w"], shapes[L + ln + "_b"] = [D], [D]
    g.node(L + "ln1", "layer_norm", [L + "res1", L + "ln1_w", L + "ln1_b"])
    lin(L + "ff1", L + "ln1", D, FF)
    g.node(L + "gelu", "gelu", [L + "ff1"])
    g.node(L + "gelu_drop", "dropout", [L + "gelu"], p=p)
    lin(L + "ff2", L + "gelu_drop", FF, D)
    g.node(L + "ff2_drop", "dropout", [L + "ff2"], p=p)
    g.node(L + "res2", "add", [L + "ln1", L + "ff2_drop"])
    return g.node(L + "ln2", "layer_norm", [L + "res2", L + "ln2_w", L + "ln2_b"])


def encoder_layer_torch(P, ctx, i, x, p):
    L = "l%d_" % i
    n, t, _ = x.shape
    hd = D // HEADS

    def lin(name, src):
        y = src @ P[name + "_w"]
        return y + P[name + "_b"] if name + "_b" in P else y

    def heads(name):
        return lin(name, x).reshape(n, t, HEADS, hd).transpose(1, 2)

    q, k, v = heads(L + "q"), heads(L + "k"), heads(L + "v")
    attn = torch.softmax((q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd)), dim=-1)
    attn = ctx.dropout(L + "attn_drop", attn, p)
    c = (attn @ v).transpose(1, 2).reshape(n, t, D)
    res1 = x + ctx.dropout(L + "o_drop", lin(L + "o", c), p)
    h = F.layer_norm(res1, (D,), P[L + "ln1_w"], P[L + "ln1_b"], eps=1e-5)
    f = ctx.dropout(L + "gelu_drop", F.gelu(lin(L + "ff1", h)), p)
    res2 = h + ctx.dropout(L + "ff2_drop", lin(L + "ff2", f), p)
    return F.layer_norm(res2, (D,), P[L + "ln2_w"], P[L + "ln2_b"], eps=1e-5)


def transformer(p):
    name = "transformer_dropout" if p > 0 else "transformer"
    g, shapes = GraphText("parity_" + name), {}
    g.placeholder("ids", [-1, T], "INT64")
    g.placeholder("labels", [-1], "INT64")
    g.parameter("tok_emb", [VOCAB, D])
    g.parameter("pos_emb", [T, D])
    shapes["tok_emb"], shapes["pos_emb"] = [VOCAB, D], [T, D]
    g.node("emb", "embedding", ["tok_emb", "ids"])
    x = g.node("emb_pos", "add", ["emb", "pos_emb"])
    for i in range(2):
        x = encoder_layer_graph(g, shapes, i, x, p)
    g.node("pooled", "mean", [x], axes=[1])
    g.parameter("cls_w", [D, CLASSES])
    g.parameter("cls_b", [CLASSES])
    shapes["cls_w"], shapes["cls_b"] = [D, CLASSES], [CLASSES]
    g.node("logits", "linear", ["pooled", "cls_w", "cls_b"])
    g.node("loss", "softmax_cross_entropy", ["logits", "labels"])
    text = g.finish(["logits"], "loss")

    def forward(P, ctx, X):
        x = F.embedding(X["ids"], P["tok_emb"]) + P["pos_emb"]
        for i in range(2):
            x = encoder_layer_torch(P, ctx, i, x, p)
        logits = x.mean(dim=1) @ P["cls_w"] + P["cls_b"]
        return {"logits": logits}, F.cross_entropy(logits, X["labels"])

    gen = torch.Generator().manual_seed(3)
    inputs = {"ids": torch.randint(0, VOCAB, (3, T), generator=gen, dtype=torch.int64),
              "labels": torch.tensor([3, 0, 2], dtype=torch.int64)}
    if p > 0:
        optimizer = {"kind": "sgd", "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 1e-4}
    else:
        optimizer = {"kind": "adam", "learning_rate": 0.01, "weight_decay": 0.0,
                     "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    return text, shapes, {}, forward, inputs, optimizer


# ---- running a network and writing its fixture -----------------------------------------------

def initial_values(shapes, states, seed):
    gen = torch.Generator().manual_seed(seed)
    P = {}
    for name, shape in shapes.items():
        fan_in = max(1, math.prod(shape[1:])) if len(shape) > 1 else 1
        if name.endswith(("_bn_w", "ln1_w", "ln2_w")):
            v = 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        elif len(shape) == 1:
            v = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            fan = shape[0] if len(shape) == 2 and not name.endswith("_emb") else fan_in
            v = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(fan)
        P[name] = v.requires_grad_(True)
    S = {}
    for bn, c in states.items():
        S[bn + "_mean"] = 0.1 * torch.randn(c, generator=gen, dtype=torch.float64)
        S[bn + "_var"] = 0.5 + torch.rand(c, generator=gen, dtype=torch.float64)
    return P, S


def make_optimizer(params, cfg):
    if cfg["kind"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["learning_rate"], momentum=cfg["momentum"],
                               weight_decay=cfg["weight_decay"])
    return torch.optim.Adam(params, lr=cfg["learning_rate"], betas=(cfg["beta1"], cfg["beta2"]),
                            eps=cfg["epsilon"], weight_decay=cfg["weight_decay"])


def tensor_json(t):
    t = t.detach()
    dtype = "int64" if t.dtype == torch.int64 else "float64"
    values = t.reshape(-1).tolist()
    return {"dtype": dtype, "shape": list(t.shape), "values": values}


def tensors_json(d):
    return {k: tensor_json(v) for k, v in sorted(d.items())}


def build(name, net, init_seed):
    text, shapes, states, forward, inputs, opt_cfg = net
    P, S = initial_values(shapes, states, init_seed)
    fixture = {"name": name, "graph": text, "seed": SEED, "steps": STEPS,
               "optimizer": dict({"momentum": 0.0, "beta1": 0.9, "beta2": 0.999,
                                  "epsilon": 1e-8}, **opt_cfg),
               "inputs": tensors_json(inputs), "parameters": tensors_json(P),
               "state": tensors_json(S)}

    # Loss and gradients on the initial values, as ComputeGradients: step 0's dropout masks,
    # batch norm in training mode, the running statistics left as they were.
    _, loss = forward(P, Context(True, 0, {k: v.clone() for k, v in S.items()}), inputs)
    grads = torch.autograd.grad(loss, list(P.values()))
    fixture["loss"] = loss.item()
    fixture["gradients"] = tensors_json(dict(zip(P.keys(), grads)))

    optimizer = make_optimizer(list(P.values()), fixture["optimizer"])
    losses = []
    for step in range(STEPS):
        optimizer.zero_grad()
        _, loss = forward(P, Context(True, step, S), inputs)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    fixture["losses"] = losses
    fixture["final_parameters"] = tensors_json(P)
    fixture["final_state"] = tensors_json(S)
    with torch.no_grad():
        outputs, _ = forward(P, Context(False, STEPS, S), inputs)
    fixture["inference"] = tensors_json(outputs)
    path = os.path.join(HERE, name + ".json")
    with open(path, "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print("%s: loss %.6f -> %.6f, %d bytes" % (path, losses[0], losses[-1], os.path.getsize(path)))


def main():
    torch.use_deterministic_algorithms(True)
    build("resnet", resnet(), 11)
    build("depthwise", depthwise(), 12)
    build("transformer", transformer(0.0), 13)
    build("transformer_dropout", transformer(0.2), 14)


if __name__ == "__main__":
    main()
