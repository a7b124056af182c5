#!/usr/bin/python3
"""Prints the expected values in avg_pool_ceil_test.cc, computed with torch (1.13) in float64.

Inputs are the formulas the test builds them with: x[k] = sin(0.7 k + 0.3) * (1 + k % 3),
dy[k] = cos(0.45 k) - 0.2, k the row-major index. Run: /usr/bin/python3 THIS.
"""
import math

import torch
import torch.nn.functional as F


def ramp(n, f):
    return torch.tensor([f(k) for k in range(n)], dtype=torch.float64)


def fmt(t):
    return "{" + ", ".join(repr(float(v)) for v in t.flatten().tolist()) + "}"


def ints(v):
    return "{" + ", ".join(map(str, v)) + "}"


def case(name, shape, kernel, stride, padding, include):
    n = math.prod(shape)
    x = ramp(n, lambda k: math.sin(0.7 * k + 0.3) * (1 + k % 3)).reshape(shape).requires_grad_()
    y = F.avg_pool2d(x, kernel, stride, padding, ceil_mode=True, count_include_pad=include)
    floor = F.avg_pool2d(x, kernel, stride, padding, ceil_mode=False, count_include_pad=include)
    dy = ramp(y.numel(), lambda k: math.cos(0.45 * k) - 0.2).reshape(y.shape)
    y.backward(dy)
    print(f"      // ceil_mode=False gives {list(floor.shape)}")
    print(f"      {{.name = \"{name}\", .x = {ints(shape)}, .kernel = {ints(kernel)}, "
          f".stride = {ints(stride)}, .padding = {ints(padding)},")
    print(f"       .count_include_pad = {int(include)}, .y_shape = {ints(y.shape)},")
    print(f"       .y = {fmt(y.detach())},")
    print(f"       .dx = {fmt(x.grad)}}},")


def main():
    # Where ceil_mode gives more rows or columns than floor, a last window hangs past the padded
    # input (with count_include_pad the divisor stops at its edge).
    case("k3_s2_pad1_include", [2, 2, 6, 7], [3, 3], [2, 2], [1, 1], True)
    case("k3_s2_pad1_exclude", [2, 2, 6, 7], [3, 3], [2, 2], [1, 1], False)
    case("k2_s2_nopad_include", [1, 3, 5, 5], [2, 2], [2, 2], [0, 0], True)
    # A fourth window would start in the bottom/right padding: PyTorch drops it (3, not 4).
    case("k2_s2_pad1_dropped_include", [1, 1, 5, 5], [2, 2], [2, 2], [1, 1], True)
    case("k3x2_s3x2_pad1x0_include", [1, 2, 8, 5], [3, 2], [3, 2], [1, 0], True)
    case("k3x2_s3x2_pad1x0_exclude", [1, 2, 8, 5], [3, 2], [3, 2], [1, 0], False)


if __name__ == "__main__":
    main()
