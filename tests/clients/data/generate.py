#!/usr/bin/python3
"""Writes the data files the CLI's .npz and CSV tests read (tests/clients/data_file_test.cc and
cli_data_file_test.cc), with NumPy 1.24:

    plain.npz       np.savez: x float32 [4, 3] = arange(12) / 4, labels int64 [4] = 2, 0, 1, 2
    compressed.npz  np.savez_compressed: y int32 [3] = 1, 0, 1 first, then features float64
                    [3, 2, 2] = arange(12) - 5.5 (names not x/labels: y marks the labels)
    unnamed.npz     np.savez with positional arrays: arr_0 float32 [2, 2], arr_1 int32 [2] = 0, 1
                    (the labels are the only rank-1 array)
    three.npz       three arrays (refused)
    uint8.npz       x uint8 [2, 2], labels [2] (refused: convert with astype)
    blobs_train.npz / blobs_test.npz and blobs_train.csv: three Gaussian clusters in 2-D, 480 and
                    120 samples (labels 0, 1, 2), the same training samples in both formats
Run from anywhere: python3 tests/clients/data/generate.py
"""

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def main():
    np.savez(path("plain.npz"), x=(np.arange(12, dtype=np.float32) / 4).reshape(4, 3),
             labels=np.array([2, 0, 1, 2], dtype=np.int64))
    np.savez_compressed(path("compressed.npz"), y=np.array([1, 0, 1], dtype=np.int32),
                        features=(np.arange(12, dtype=np.float64) - 5.5).reshape(3, 2, 2))
    np.savez(path("unnamed.npz"), np.array([[1, 2], [3, 4]], dtype=np.float32),
             np.array([0, 1], dtype=np.int32))
    np.savez(path("three.npz"), a=np.zeros(3), b=np.zeros(3), c=np.zeros((3, 2)))
    np.savez(path("uint8.npz"), x=np.zeros((2, 2), dtype=np.uint8), labels=np.zeros(2))

    rng = np.random.default_rng(0)
    labels = np.arange(600) % 3
    angles = 2 * np.pi * labels / 3
    x = (2 * np.stack([np.cos(angles), np.sin(angles)], 1)
         + 0.3 * rng.normal(size=(600, 2))).astype(np.float32)
    np.savez(path("blobs_train.npz"), x=x[:480], labels=labels[:480])
    np.savez_compressed(path("blobs_test.npz"), x=x[480:], labels=labels[480:])
    with open(path("blobs_train.csv"), "w") as out:
        out.write("a,b,label\n")
        for row, label in zip(x[:480], labels[:480]):
            out.write(f"{row[0]!r},{row[1]!r},{label}\n")


if __name__ == "__main__":
    main()
