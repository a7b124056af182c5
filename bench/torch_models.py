"""PyTorch twins of models/resnet_fmnist.pbtxt and models/transformer_repeat.pbtxt (written by
scripts/generate-models.py), for bench/pytorch_bench.py and bench/learn.

Parameter names map onto backflow's (`backflow_name` below), so bench/learn can copy a backflow
model's initial parameters into these modules and train both from the same start. backflow's
linear weight is [in, out]; nn.Linear's is [out, in] (transposed on copy).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

VOCAB, SEQ, DIM, HEADS, MLP, LAYERS, DROPOUT = 16, 8, 32, 2, 64, 2, 0.1


class ConvBn(nn.Module):
    def __init__(self, cin, cout, kernel, stride, relu):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        y = self.bn(self.conv(x))
        return F.relu(y) if self.relu else y


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = ConvBn(cin, cout, 3, stride, relu=True)
        self.b = ConvBn(cout, cout, 3, 1, relu=False)
        self.p = ConvBn(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout \
            else None

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + (self.p(x) if self.p is not None else x))


class ResNetFmnist(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvBn(1, 16, 3, 2, relu=True)
        self.block1 = BasicBlock(16, 16, 1)
        self.block2 = BasicBlock(16, 32, 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(DIM, DIM) for _ in range(4))

    def forward(self, x):
        def heads(t):
            return t.reshape(-1, SEQ, HEADS, DIM // HEADS).transpose(1, 2)
        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(DIM // HEADS), dim=-1)
        return self.o((weights @ v).transpose(1, 2).reshape(-1, SEQ, DIM))


class EncoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.attn = Attention()
        self.fc1, self.fc2 = nn.Linear(DIM, MLP), nn.Linear(MLP, DIM)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class TransformerRepeat(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Parameter(torch.randn(SEQ, DIM) * 0.1)
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(DIM)
        self.logits = nn.Linear(DIM, 2)

    def forward(self, ids):
        x = self.embed(ids) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.logits(self.ln_f(x).mean(1))


def backflow_name(torch_name):
    """The backflow parameter or state name of a ResNetFmnist state_dict entry, or None for
    entries backflow has no counterpart of (num_batches_tracked)."""
    parts = torch_name.split(".")
    if parts[-1] == "num_batches_tracked":
        return None
    if parts[0] == "fc":
        return f"fc_{'w' if parts[1] == 'weight' else 'b'}"
    prefix = parts[0] if parts[0] == "stem" else parts[0] + parts[1]
    layer, what = parts[-2], parts[-1]
    if layer == "conv":
        return f"{prefix}_w"
    return f"{prefix}_bn_" + {"weight": "w", "bias": "b", "running_mean": "mean",
                              "running_var": "var"}[what]


def load_backflow_values(model, values):
    """Copies backflow's arrays (name -> numpy) into a ResNetFmnist's parameters and buffers."""
    state = model.state_dict()
    for name, tensor in state.items():
        source = backflow_name(name)
        if source is None:
            continue
        value = torch.from_numpy(values[source].copy()).to(tensor.dtype)
        if name == "fc.weight":
            value = value.t()
        tensor.copy_(value.reshape(tensor.shape))
    model.load_state_dict(state)


def repeat_task(n, generator):
    """n sequences of SEQ int64 tokens in [0, VOCAB) and int64 labels: 1 if some token occurs
    twice, else 0 (all distinct); half of each, alternating. As engine/data/repeat_task.cc."""
    ids = torch.empty(n, SEQ, dtype=torch.int64)
    labels = torch.arange(n, dtype=torch.int64) % 2
    for i in range(n):
        ids[i] = torch.randperm(VOCAB, generator=generator)[:SEQ]
        if labels[i]:
            a, b = torch.randperm(SEQ, generator=generator)[:2].tolist()
            ids[i, b] = ids[i, a]
    return ids, labels
