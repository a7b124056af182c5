"""backflow.data: the IDX reader and the Fashion-MNIST loader, without a server."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from backflow.data import FASHION_MNIST_DIR, batches, load_fashion_mnist, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(directory: Path, prefix: str, images: np.ndarray, labels: np.ndarray,
                compress: bool) -> None:
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{prefix}-{kind}-ubyte"
        data = idx_bytes(array)
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_plain_and_gzip(tmp_path: Path, compress: bool) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(idx_bytes(array)) if compress else idx_bytes(array))
    np.testing.assert_array_equal(read_idx(str(path)), array)
    np.testing.assert_array_equal(read_idx(str(path), max_records=1), array[:1])


@pytest.mark.parametrize("content,message", [
    (b"\x01\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00", "bad magic"),
    (b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4, "element type 0x0d"),
    (b"\x00\x00\x08\x00", "rank 0"),
    (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x00" * 4, "truncated: the data has 4 of 5"),
    (b"\x00\x00\x08\x02" + (1).to_bytes(4, "big"), "truncated: the header"),
    (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"\x00" * 3, "bytes past"),
])
def test_read_idx_rejects_malformed_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as raised:
        read_idx(str(path))
    assert str(path) in str(raised.value)


def test_load_scales_pixels_and_prefers_gzip(tmp_path: Path) -> None:
    images = np.array([[[0, 255], [51, 128]], [[1, 2], [3, 4]], [[9, 9], [9, 9]]], np.uint8)
    labels = np.array([9, 0, 3], np.uint8)
    write_split(tmp_path, "t10k", images, labels, compress=True)
    write_split(tmp_path, "t10k", images[:1], labels[:1], compress=False)  # ignored
    pixels, ids = load_fashion_mnist(str(tmp_path), train=False, limit=2)
    assert pixels.shape == (2, 1, 2, 2) and pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[0, 0], np.float32([[0, 255], [51, 128]]) / np.float32(255))
    np.testing.assert_array_equal(ids, np.float32([9, 0]))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(str(tmp_path), train=True)


def test_load_rejects_labels_out_of_range(tmp_path: Path) -> None:
    write_split(tmp_path, "train", np.zeros((2, 2, 2)), np.array([1, 10]), compress=False)
    with pytest.raises(ValueError, match="label 10 is not below 10"):
        load_fashion_mnist(str(tmp_path))


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="dataset-fashion-mnist absent")
def test_fashion_mnist_as_installed() -> None:
    images, labels = load_fashion_mnist(limit=100)
    assert images.shape == (100, 1, 28, 28) and labels.shape == (100,)
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(labels[:5], [9, 0, 0, 3, 0])  # ankle boot, T-shirt, ...


def test_batches_cover_an_epoch() -> None:
    images = np.arange(10, dtype=np.float32).reshape(10, 1)
    labels = np.arange(10, dtype=np.float32)
    plain = list(batches(images, labels, 4))
    assert [len(b["labels"]) for b in plain] == [4, 4, 2]
    assert [len(b["labels"]) for b in batches(images, labels, 4, drop_last=True)] == [4, 4]
    shuffled = list(batches(images, labels, 3, shuffle=True, seed=5))
    seen = np.concatenate([b["labels"] for b in shuffled])
    assert sorted(seen) == list(labels) and not np.array_equal(seen, labels)
    for b in shuffled:
        np.testing.assert_array_equal(b["images"][:, 0], b["labels"])
    with pytest.raises(ValueError, match="at least 1"):
        next(batches(images, labels, 0))
