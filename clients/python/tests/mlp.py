"""A small classifier and data set shared by the tests that train."""

from __future__ import annotations

import numpy as np

from backflow import GraphBuilder
from backflow.v1 import graph_pb2

INPUTS = 2
HIDDEN = 16
CLASSES = 3


def tanh_mlp() -> graph_pb2.Graph:
    """x [N, 2] -> linear 2x16, tanh -> linear 16x3 = logits; softmax cross-entropy loss against
    labels [N]; outputs logits and accuracy."""
    g = GraphBuilder("tanh_mlp")
    x = g.placeholder("x", [-1, INPUTS])
    labels = g.placeholder("labels", [-1])
    w1 = g.parameter("w1", [INPUTS, HIDDEN], init="glorot")
    b1 = g.parameter("b1", [HIDDEN])
    w2 = g.parameter("w2", [HIDDEN, CLASSES], init="glorot")
    b2 = g.parameter("b2", [CLASSES])
    h = g.tanh(g.linear(x, w1, b1, name="h_pre"), name="h")
    logits = g.linear(h, w2, b2, name="logits")
    g.output(logits, g.accuracy(logits, labels, name="accuracy"))
    g.loss(g.softmax_cross_entropy(logits, labels, name="loss"))
    return g.build()


def blobs(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points in three well-separated Gaussian clusters: x float32 [n, 2], labels float32 [n]
    (class ids 0, 1, 2)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    angles = 2 * np.pi * labels / CLASSES
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x = centres + 0.3 * rng.normal(size=(n, INPUTS))
    return x.astype(np.float32), labels.astype(np.float32)


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The graph's logits computed with NumPy in float64."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    h = np.tanh(x.astype(np.float64) @ p["w1"] + p["b1"])
    return h @ p["w2"] + p["b2"]
