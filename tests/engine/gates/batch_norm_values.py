#!/usr/bin/python3
"""Prints the expected values in batch_norm_test.cc, computed with torch (1.13) in float64.

Inputs are the formulas the test builds them with: x[k] = sin(0.7 k + 0.3) * (1 + k % 3),
dy[k] = cos(0.45 k) - 0.2, weight[c] = 0.5 + 0.25 c, bias[c] = 0.1 - 0.3 c,
running_mean[c] = 0.2 c - 0.1, running_var[c] = 0.5 + 0.4 c. Run: /usr/bin/python3 THIS.
"""
import math

import torch
import torch.nn.functional as F


def ramp(n, f):
    return torch.tensor([f(k) for k in range(n)], dtype=torch.float64)


def fmt(t):
    return "{" + ", ".join(repr(float(v)) for v in t.flatten().tolist()) + "}"


def case(name, shape, affine, training):
    n = math.prod(shape)
    c = shape[1]
    x = ramp(n, lambda k: math.sin(0.7 * k + 0.3) * (1 + k % 3)).reshape(shape).requires_grad_()
    dy = ramp(n, lambda k: math.cos(0.45 * k) - 0.2).reshape(shape)
    w = ramp(c, lambda k: 0.5 + 0.25 * k).requires_grad_()
    b = ramp(c, lambda k: 0.1 - 0.3 * k).requires_grad_()
    rm = ramp(c, lambda k: 0.2 * k - 0.1)
    rv = ramp(c, lambda k: 0.5 + 0.4 * k)
    y = F.batch_norm(x, rm, rv, w if affine else None, b if affine else None,
                     training=training, momentum=0.1, eps=1e-5)
    y.backward(dy)
    print(f"  // {name}")
    print(f"  {{.name = \"{name}\", .shape = {{{', '.join(map(str, shape))}}}, "
          f".affine = {str(affine).lower()}, .training = {str(training).lower()},")
    print(f"   .y = {fmt(y.detach())},")
    print(f"   .running_mean = {fmt(rm)},")
    print(f"   .running_var = {fmt(rv)},")
    print(f"   .dx = {fmt(x.grad)},")
    print(f"   .dweight = {fmt(w.grad if affine else torch.zeros(0))},")
    print(f"   .dbias = {fmt(b.grad if affine else torch.zeros(0))}}},")


for shape in ([4, 3], [2, 3, 2, 2]):
    for affine in (True, False):
        for training in (True, False):
            name = (f"{'4d' if len(shape) == 4 else '2d'}_{'affine' if affine else 'plain'}_"
                    f"{'training' if training else 'inference'}")
            case(name, shape, affine, training)
