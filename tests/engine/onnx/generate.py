#!/usr/bin/env python3
"""PyTorch 1.13 ONNX fixtures for tests/engine/onnx/onnx_parity_test.cc (and the importer's tests).

Regenerate (needs torch 1.13 and onnx 1.12; run by hand, never in CI, and commit what it writes):

    /usr/bin/python3 tests/engine/onnx/generate.py

It writes into tests/engine/onnx/ (the directory of this script), for each network NAME, the
model as torch.onnx.export wrote it, NAME.onnx, and what torch computes with it, NAME.json:

    mlp          Linear(20, 16) -> ReLU -> Linear(16, 16) -> ReLU -> Linear(16, 5) on [N, 20];
                 the default export (eval mode, constant folding): Gemm with transB = 1
    lenet        LeNet-5 on [N, 1, 28, 28], narrowed to keep the fixture small: conv 5x5 pad 2
                 (1 -> 4) -> ReLU -> max pool 2 -> conv 5x5 (4 -> 6) -> ReLU -> average pool 2 ->
                 x.view(x.size(0), -1) (the Shape -> Gather -> Unsqueeze -> Concat -> Reshape
                 chain) -> Linear(150, 16) -> ReLU -> Linear(16, 12) -> ReLU -> Linear(12, 10);
                 the default export
    resnet       conv 3x3 -> BatchNorm2d -> ReLU, two basic blocks (the second with stride 2 and
                 a 1x1 conv + BatchNorm2d projection shortcut), AdaptiveAvgPool2d(1), flatten,
                 Linear; on [N, 3, 8, 8]; exported with training=TrainingMode.TRAINING and
                 do_constant_folding=False (an eval export folds batch norm into the convs)
    depthwise    conv 3x3 -> BN -> ReLU -> depthwise conv 3x3 (groups = C) -> BN -> ReLU ->
                 pointwise 1x1 conv -> BN -> ReLU -> global average pool -> Linear; on
                 [N, 3, 8, 8]; TRAINING mode, no folding
    transformer  nn.Embedding(11, 16) + nn.TransformerEncoder of 2 nn.TransformerEncoderLayer
                 (d_model 16, nhead 2, dim_feedforward 32, dropout 0.0, batch_first), mean over
                 time, Linear(16, 4); on int64 token ids [N, 6]; TRAINING mode, no folding (so
                 in_proj_weight stays a named initializer behind a Transpose node)

All are exported with opset 14, input_names ["input"], output_names ["output"] and dynamic_axes
{input: {0: "N"}, output: {0: "N"}}, then reloaded and passed through onnx.checker. Convolutions
before a batch norm have no bias (its gradient would be identically zero: the batch norm cancels
it). Biases, batch norm and layer norm affine parameters and the running statistics are drawn at
random before the export (torch starts them at 0 and 1, which would hide a mixed-up tensor).

The error fixtures, hand-made with onnx.helper, each a valid model but for what it shows:

    bad_unsupported_op.onnx  input [N, 4] -> Relu ("relu_0") -> Einsum ("einsum_0", "ni,ij->nj"
                             with a [4, 3] initializer "weight") -> output [N, 3]; opset 14.
                             Einsum is not an operator the importer translates
    bad_external_data.onnx   input [N, 4] -> MatMul ("matmul_0") with initializer "weight"
                             [4, 3] stored as external data, location "weights.bin" (beside it,
                             committed too); opset 14. Refused: CVE-2022-25882
    bad_opset9.onnx          input [N, 4] -> Relu ("relu_0") -> output; default-domain opset 9,
                             below the importer's minimum of 11

Each NAME.json is a JSON object:

    name, onnx (the file name), opset, producer (producer_name and _version of the .onnx),
    onnx_ops (the sorted op types of its nodes), input ("input"), output ("output"),
    labels ("labels": the placeholder the importer adds for the loss), loss_kind
    ("softmax_cross_entropy"), steps (5), optimizer {kind, learning_rate, momentum,
    weight_decay, beta1, beta2, epsilon}, state_dict (the torch state_dict keys of the trained
    parameters and the running statistics, sorted: the names the import must keep),
    parameter_shapes and state_shapes (name -> shape: the float initializers, split into the
    trained parameters and batch norm's running mean and variance), inputs {input, labels}
    (the batch), and then two sets of torch's results, "float64" (model.double(), the reference
    for backflow's float64) and "float32" (the model as exported, for backflow's float32):

        loss       on the initial values (the .onnx initializers), training mode: batch norm
                   normalizes with the batch's statistics and leaves the running ones as they are
        gradients  of the loss with respect to every trained parameter, on the initial values
        losses     the loss each of the 5 optimizer steps computed, before its update
        final_parameters, final_state   after the 5 steps (state: the running mean and variance)
        inference  {"output": tensor}: the output in eval mode after the 5 steps

There are no initial values in the JSON: they are the .onnx's initializers, which the reference
read back from the file (numpy_helper), so torch starts from exactly the bytes the importer
sees. Every step trains on the same batch. The loss is softmax cross-entropy of "output" against
"labels" (int64 class ids), averaged over the batch. Optimizers: SGD (lr 0.05, momentum 0.9,
weight decay 1e-4) for the MLP and the CNNs; Adam (lr 1e-3, betas 0.9 and 0.999, no weight
decay) for the transformer, with epsilon 1e-5 rather than torch's 1e-8: the key third of
in_proj_bias has a gradient of zero plus rounding noise (the softmax over the keys cancels a key
bias), which Adam divides by sqrt(v) + epsilon. In float32 that noise is ~4e-10; with epsilon
1e-8 it moves those biases by ~1e-5 in 5 steps, differently in torch and backflow, with 1e-6 by
~2e-6, still most of the float32 bound; with 1e-5 by ~2e-7.

A tensor is {"dtype": "float64" | "int64", "shape": [...], "values": [row-major]}; the float64
set is written with Python's repr (exact), the float32 set with 8 significant digits (within
5e-9 of float32's value, 1/2000 of the float32 bound). The batch is float32-exact (multiples of
1/64), so both sets see the same input.

Batch norm: torch's momentum m is ONNX's 1 - m (the TRAINING-mode export writes momentum 0.9f
for torch's 0.1, which the reference reads back: 1 - 0.8999999761581421), and torch updates the
running variance with the unbiased (n / (n - 1)) batch variance while normalizing with the
biased one, as backflow's batch_norm does (ONNX's own reference updates with the biased one).

Before writing a fixture the script runs the .onnx itself node by node in float64
(onnx_forward: torch ops as kernels, every constant as the file holds it) and asserts that the
float64 reference's initial loss and final eval-mode output agree with it to 1e-13: the reference
is the arithmetic of the exported graph, not only of the module that wrote it. (That is how the
float32 attention scale and nn.TransformerEncoderLayer's eval-mode fast path were caught.)

The script also prints, per fixture, the worst disagreement of torch's float32 results with its
float64 ones as a fraction of the float32 bound the C++ test uses (see its top), to show how
much of that bound float32 rounding alone takes.
"""

import copy
import json
import math
import os

import numpy as np
import onnx
import onnx.external_data_helper
import onnx.helper as oh
import onnx.numpy_helper
import torch
from torch import nn

STEPS = 5
OPSET = 14
HERE = os.path.dirname(os.path.abspath(__file__))
SGD = {"kind": "sgd", "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
       "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
ADAM = {"kind": "adam", "learning_rate": 1e-3, "momentum": 0.0, "weight_decay": 0.0,
        "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-5}
# The C++ test's float32 tolerance (onnx_parity_test.cc): rtol, floor.
F32_TOL = (1e-5, 0.1)


# ---- the networks -----------------------------------------------------------------------------

class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(20, 16), nn.Linear(16, 16), nn.Linear(16, 5)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, padding=2)
        self.conv2 = nn.Conv2d(4, 6, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(150, 16), nn.Linear(16, 12), nn.Linear(12, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.avg_pool2d(torch.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def conv_bn(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride)
        self.b = conv_bn(cout, cout, 3)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.b(torch.relu(self.a(x))) + s)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 4, 3)
        self.block1 = BasicBlock(4, 4, 1)
        self.block2 = BasicBlock(4, 8, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.block2(self.block1(torch.relu(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 6, 3)
        self.dw = conv_bn(6, 6, 3, groups=6)
        self.pw = conv_bn(6, 10, 1)
        self.fc = nn.Linear(10, 5)

    def forward(self, x):
        x = torch.relu(self.pw(torch.relu(self.dw(torch.relu(self.stem(x))))))
        return self.fc(x.mean(dim=(2, 3)))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.encoder(self.emb(x)).mean(dim=1))


def randomize(model, gen):
    """Non-trivial values for what torch starts at constants: biases, norms, running stats."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                module.weight.copy_(1.0 + 0.1 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(c, generator=gen))
        for name, p in model.named_parameters():
            if name.endswith("bias") and "norm" not in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def images(gen, shape):
    """Float32-exact inputs: multiples of 1/64 in [-2, 2)."""
    return torch.randint(-128, 128, shape, generator=gen).to(torch.float32) / 64.0


def networks():
    """(name, module, input, labels, optimizer, training-mode export)."""
    gen = torch.Generator().manual_seed(14)
    torch.manual_seed(14)  # the modules' own initialization
    nets = [("mlp", Mlp(), images(gen, (6, 20)), [0, 4, 2, 1, 3, 2], SGD, False),
            ("lenet", LeNet(), images(gen, (4, 1, 28, 28)), [7, 0, 3, 9], SGD, False),
            ("resnet", ResNet(), images(gen, (4, 3, 8, 8)), [1, 4, 0, 2], SGD, True),
            ("depthwise", Depthwise(), images(gen, (4, 3, 8, 8)), [3, 0, 2, 2], SGD, True),
            ("transformer", Transformer(), torch.randint(0, 11, (5, 6), generator=gen),
             [2, 0, 3, 1, 3], ADAM, True)]
    for _, model, _, _, _, _ in nets:
        randomize(model, gen)
    return [(n, m, x, torch.tensor(y, dtype=torch.int64), o, t) for n, m, x, y, o, t in nets]


# ---- export and reference ---------------------------------------------------------------------

def export(name, model, x, training):
    path = os.path.join(HERE, name + ".onnx")
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    kwargs = {"training": mode, "do_constant_folding": False} if training else {}
    # The export traces a forward pass, which in training mode moves the running statistics:
    # export a copy, so the module keeps its values (the reference reads the file's anyway).
    torch.onnx.export(copy.deepcopy(model), (x,), path, opset_version=OPSET,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, **kwargs)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    return path, proto


class Float32Sqrt:
    """torch.nn.functional's math module, but for sqrt: float32(sqrt(x)) as a double.

    Attention divides q by math.sqrt(head_dim), which the export writes as a float32 Constant
    (2.8284270763397217 for sqrt(8)); the float64 reference divides by that same constant.
    """

    def __getattr__(self, name):
        return getattr(math, name)

    @staticmethod
    def sqrt(x):
        return float(np.float32(math.sqrt(x)))


def match_onnx_constants(model, proto):
    """The module's float constants as the .onnx holds them: float32, widened exactly.

    Batch norm: torch's momentum is 1 - ONNX's (0.9f -> 0.10000002384185791) and its epsilon
    ONNX's (1e-5f); layer norm's epsilon is a float32 Constant in the graph (1e-5f). The
    importer reads the same float32 values, so the float64 reference must too: 0.1 against
    0.10000002384 moves the running statistics by ~1e-8 of themselves in 5 steps.
    """
    for node in proto.graph.node:
        if node.op_type == "BatchNormalization":
            bn = model.get_submodule(node.input[1].rsplit(".", 1)[0])
            attrs = {a.name: oh.get_attribute_value(a) for a in node.attribute}
            bn.momentum = 1.0 - attrs["momentum"]
            bn.eps = attrs["epsilon"]
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = float(np.float32(module.eps))


def initializers(proto):
    return {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}


def load_initializers(model, values):
    """The module's parameters and buffers from the .onnx's float initializers, by name."""
    state = model.state_dict()
    floats = {k: v for k, v in values.items() if v.dtype == np.float32}
    missing = sorted(set(floats) - set(state))
    assert not missing, "initializers that are not state_dict keys: %s" % missing
    absent = sorted(k for k in set(state) - set(floats) if not k.endswith("num_batches_tracked"))
    assert not absent, "state_dict keys that are not initializers: %s" % absent
    with torch.no_grad():
        for key, v in floats.items():
            state[key].copy_(torch.from_numpy(v.copy()))
    return sorted(floats)


def is_running_stat(key):
    return key.endswith(("running_mean", "running_var"))


def make_optimizer(params, cfg):
    if cfg["kind"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["learning_rate"], momentum=cfg["momentum"],
                               weight_decay=cfg["weight_decay"])
    return torch.optim.Adam(params, lr=cfg["learning_rate"], betas=(cfg["beta1"], cfg["beta2"]),
                            eps=cfg["epsilon"], weight_decay=cfg["weight_decay"])


def run_torch(model, names, x, labels, cfg):
    """Torch's results in the model's dtype: see the docstring."""
    params = dict(model.named_parameters())
    trained = [n for n in names if not is_running_stat(n)]
    assert sorted(params) == trained, (sorted(params), trained)
    loss_fn = nn.CrossEntropyLoss()
    out = {}

    probe = copy.deepcopy(model).train()  # its running statistics move; the model's do not
    probe_params = dict(probe.named_parameters())
    loss = loss_fn(probe(x), labels)
    grads = torch.autograd.grad(loss, [probe_params[n] for n in trained])
    out["loss"] = loss.item()
    out["gradients"] = dict(zip(trained, grads))

    model.train()
    optimizer = make_optimizer([params[n] for n in trained], cfg)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    out["losses"] = losses
    state = model.state_dict()
    out["final_parameters"] = {n: state[n] for n in trained}
    out["final_state"] = {n: state[n] for n in names if is_running_stat(n)}
    # With gradients enabled: under no_grad an eval-mode nn.TransformerEncoderLayer takes its
    # fused fast path (torch._transformer_encoder_layer_fwd), which is not the exported graph's
    # arithmetic (~4e-9 of the output apart in float64).
    model.eval()
    out["inference"] = {"output": model(x).detach()}
    return out


# ---- the .onnx's own semantics, as a check of the reference ---------------------------------

def onnx_forward(proto, values, x, training):
    """The exported graph run node by node in float64 (torch ops as kernels) on `values`.

    An interpretation of the file independent of the module that wrote it: the float64
    reference must agree with it, float32 constants (attention's scale, the epsilons) included.
    Batch norm normalizes with the batch's statistics when training, the running ones when not;
    dropout is the identity (every ratio here is 0).
    """
    F = torch.nn.functional
    env = {k: torch.from_numpy(v.copy()) for k, v in values.items()}
    env = {k: v.double() if v.is_floating_point() else v for k, v in env.items()}
    env["input"] = x.double() if x.is_floating_point() else x
    for node in proto.graph.node:
        a = {at.name: oh.get_attribute_value(at) for at in node.attribute}
        i = [env[n] for n in node.input if n]
        op = node.op_type
        if op == "Constant":
            t = torch.from_numpy(onnx.numpy_helper.to_array(a["value"]).copy())
            y = t.double() if t.is_floating_point() else t
        elif op in ("Add", "Sub", "Mul", "Pow"):
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Pow": torch.pow}[op](*i)
        elif op == "Div":
            y = torch.div(*i, rounding_mode="trunc" if not i[0].is_floating_point() else None)
        elif op in ("Relu", "Sqrt"):
            y = torch.relu(i[0]) if op == "Relu" else torch.sqrt(i[0])
        elif op == "Gemm":
            assert a == {"alpha": 1.0, "beta": 1.0, "transB": 1}, a
            y = i[0] @ i[1].T + i[2]
        elif op == "MatMul":
            y = i[0] @ i[1]
        elif op == "Conv":
            pads = a["pads"]
            assert pads[:2] == pads[2:], pads
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, a["strides"], pads[:2],
                         a["dilations"], a["group"])
        elif op == "BatchNormalization":
            # eps: the attribute, float32 widened; training: the batch's biased variance.
            y = F.batch_norm(i[0], i[3].clone(), i[4].clone(), i[1], i[2], training=training,
                             eps=a["epsilon"])
        elif op in ("MaxPool", "AveragePool"):
            assert not any(a["pads"]) and not a.get("ceil_mode"), a
            pool = F.max_pool2d if op == "MaxPool" else F.avg_pool2d
            y = pool(i[0], a["kernel_shape"], a["strides"])
        elif op == "Pad":
            assert not i[1].any() and a.get("mode", b"constant") == b"constant", i[1]
            y = i[0]
        elif op == "GlobalAveragePool":
            y = i[0].mean(dim=(2, 3), keepdim=True)
        elif op == "ReduceMean":
            y = i[0].mean(dim=a["axes"], keepdim=bool(a.get("keepdims", 1)))
        elif op == "Flatten":
            y = i[0].flatten(a["axis"])
        elif op == "Shape":
            y = torch.tensor(list(i[0].shape), dtype=torch.int64)
        elif op == "Gather":
            axis = a.get("axis", 0)
            index = i[1].reshape(-1) % i[0].shape[axis]  # negative: from the end
            y = torch.index_select(i[0], axis, index).reshape(
                i[0].shape[:axis] + i[1].shape + i[0].shape[axis + 1:])
        elif op == "Unsqueeze":
            y = i[0].reshape(list(i[0].shape[:int(i[1])]) + [1] + list(i[0].shape[int(i[1]):]))
        elif op == "Concat":
            y = torch.cat(i, dim=a["axis"])
        elif op == "Reshape":
            assert not a.get("allowzero") and 0 not in i[1].tolist(), i[1]
            y = i[0].reshape(i[1].tolist())
        elif op == "Transpose":
            y = i[0].permute(a["perm"])
        elif op == "Cast":
            assert a["to"] == onnx.TensorProto.INT64, a
            y = i[0].to(torch.int64)
        elif op == "Slice":
            starts, ends, axes = (int(t) for t in i[1:4])
            assert len(i) == 4 and axes == -1, node
            y = i[0][..., starts:ends]
        elif op == "Softmax":
            y = torch.softmax(i[0], dim=a["axis"])
        elif op == "Dropout":
            assert float(i[1]) == 0.0, i[1]
            y = i[0]
        else:
            raise ValueError("no kernel for %s" % op)
        env[node.output[0]] = y
    return env["output"]


def check_reference(proto, values, x, labels, out64):
    """The float64 reference against onnx_forward: the initial loss and the final outputs."""
    loss = nn.functional.cross_entropy(onnx_forward(proto, values, x, True), labels).item()
    assert abs(loss - out64["loss"]) <= 1e-13 * abs(loss), (loss, out64["loss"])
    final = dict(values)
    for group in ("final_parameters", "final_state"):
        final.update({k: v.detach().numpy() for k, v in out64[group].items()})
    y = onnx_forward(proto, final, x, False)
    want = out64["inference"]["output"]
    err = (y - want).abs().max().item() / want.abs().max().item()
    assert err <= 1e-13, err
    return max(abs(loss - out64["loss"]) / abs(loss), err)


# ---- JSON -------------------------------------------------------------------------------------

def tensor_json(t, digits=None):
    t = t.detach() if isinstance(t, torch.Tensor) else torch.from_numpy(np.asarray(t))
    if t.dtype == torch.int64:
        return {"dtype": "int64", "shape": list(t.shape), "values": t.reshape(-1).tolist()}
    values = t.double().reshape(-1).tolist()
    if digits:
        values = [float("%.*g" % (digits, v)) for v in values]
    return {"dtype": "float64", "shape": list(t.shape), "values": values}


def results_json(out, digits):
    def group(d):
        return {k: tensor_json(v, digits) for k, v in sorted(d.items())}

    def scalar(v):
        return float("%.*g" % (digits, v)) if digits else v

    return {"loss": scalar(out["loss"]), "gradients": group(out["gradients"]),
            "losses": [scalar(v) for v in out["losses"]],
            "final_parameters": group(out["final_parameters"]),
            "final_state": group(out["final_state"]), "inference": group(out["inference"])}


def float32_margin(r32, r64):
    """The worst |f32 - f64| / bound over everything, with the C++ test's float32 bound."""
    rtol, floor = F32_TOL

    def worst(a_group, b_group):
        b_all = [np.asarray(t["values"]) for t in b_group.values()]
        scale = max((np.abs(b).max() for b in b_all if b.size), default=0.0)
        w = 0.0
        for k, t in b_group.items():
            a, b = np.asarray(a_group[k]["values"]), np.asarray(t["values"])
            if b.size:
                w = max(w, (np.abs(a - b) / (rtol * np.maximum(np.abs(b), floor * scale))).max())
        return w

    parts = {"loss": abs(r32["loss"] - r64["loss"]) / (rtol * abs(r64["loss"]))}
    parts["losses"] = max(abs(a - b) / (rtol * abs(b)) for a, b in
                          zip(r32["losses"], r64["losses"]))
    for key in ("gradients", "final_parameters", "final_state", "inference"):
        if key == "inference":
            parts[key] = max(worst({k: v}, {k: r64[key][k]}) for k, v in r32[key].items())
        elif r64[key]:
            parts[key] = worst(r32[key], r64[key])
    return parts


def build(name, model, x, labels, cfg, training):
    path, proto = export(name, model, x, training)
    values = initializers(proto)
    names = load_initializers(model, values)
    match_onnx_constants(model, proto)
    state_dict = [k for k in model.state_dict() if k in names]
    fixture = {
        "name": name, "onnx": os.path.basename(path),
        "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "producer": "%s %s" % (proto.producer_name, proto.producer_version),
        "onnx_ops": sorted({n.op_type for n in proto.graph.node}),
        "input": "input", "output": "output", "labels": "labels",
        "loss_kind": "softmax_cross_entropy", "steps": STEPS, "optimizer": cfg,
        "state_dict": sorted(state_dict),
        "parameter_shapes": {n: list(values[n].shape) for n in names if not is_running_stat(n)},
        "state_shapes": {n: list(values[n].shape) for n in names if is_running_stat(n)},
        "inputs": {"input": tensor_json(x), "labels": tensor_json(labels)},
    }
    x64 = x.double() if x.is_floating_point() else x
    torch_math = torch.nn.functional.math
    torch.nn.functional.math = Float32Sqrt()  # after the export: it would trace it
    out64 = run_torch(copy.deepcopy(model).double(), names, x64, labels, cfg)
    r64 = results_json(out64, None)
    r32 = results_json(run_torch(copy.deepcopy(model).float(), names, x, labels, cfg), 8)
    torch.nn.functional.math = torch_math
    agreement = check_reference(proto, values, x, labels, out64)
    fixture["float64"], fixture["float32"] = r64, r32
    json_path = os.path.join(HERE, name + ".json")
    with open(json_path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    margin = float32_margin(r32, r64)
    print("%s: %s; loss %.6f -> %.6f; %d + %d bytes; the .onnx run in float64 agrees to %.1e; "
          "float32 vs float64 / bound: %s" % (
        name, " ".join(fixture["onnx_ops"]), r64["losses"][0], r64["losses"][-1],
        os.path.getsize(path), os.path.getsize(json_path), agreement,
        ", ".join("%s %.3g" % kv for kv in margin.items())))


# ---- error fixtures ---------------------------------------------------------------------------

def tiny_model(nodes, initializers_, output_shape, opset):
    graph = oh.make_graph(
        nodes, "bad", [oh.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 4])],
        [oh.make_tensor_value_info("output", onnx.TensorProto.FLOAT, output_shape)],
        initializers_)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)],
                          producer_name="backflow-tests", producer_version="1")
    model.ir_version = 7
    return model


def weight():
    w = (np.arange(12, dtype=np.float32).reshape(4, 3) - 6.0) / 8.0
    return onnx.numpy_helper.from_array(w, "weight")


def write_bad_fixtures():
    unsupported = tiny_model([oh.make_node("Relu", ["input"], ["r"], name="relu_0"),
                              oh.make_node("Einsum", ["r", "weight"], ["output"], name="einsum_0",
                                           equation="ni,ij->nj")],
                             [weight()], ["N", 3], OPSET)
    opset9 = tiny_model([oh.make_node("Relu", ["input"], ["output"], name="relu_0")], [],
                        ["N", 4], 9)
    external = tiny_model([oh.make_node("MatMul", ["input", "weight"], ["output"],
                                        name="matmul_0")], [weight()], ["N", 3], OPSET)
    onnx.external_data_helper.convert_model_to_external_data(
        external, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    for name, model in (("bad_unsupported_op", unsupported), ("bad_opset9", opset9),
                        ("bad_external_data", external)):
        path = os.path.join(HERE, name + ".onnx")
        if model is external and os.path.exists(os.path.join(HERE, "weights.bin")):
            os.remove(os.path.join(HERE, "weights.bin"))  # onnx.save appends to it
        onnx.save(model, path)  # external: writes weights.bin beside it
        onnx.checker.check_model(path)
        print("%s: %d bytes" % (path, os.path.getsize(path)))


def main():
    torch.use_deterministic_algorithms(True)
    for net in networks():
        build(*net)
    write_bad_fixtures()


if __name__ == "__main__":
    main()
