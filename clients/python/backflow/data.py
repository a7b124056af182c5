"""MNIST and Fashion-MNIST in the IDX format, as NumPy arrays the models in models/ read.

`load_fashion_mnist` matches the engine's LoadFashionMnist (engine/data/dataset.cc): images
float32 [N, 1, 28, 28] with pixel / 255, labels float32 [N] holding class ids 0..9. Files are
found as the engine finds them: NAME.gz if present, else NAME, in /usr/share/datasets/fashion-mnist
by default (Debian's dataset-fashion-mnist). MNIST's files have the same names and format, so
pointing `directory` at them reads MNIST.
"""

from __future__ import annotations

import gzip
import os
from typing import BinaryIO, Iterator, Optional

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
NUM_CLASSES = 10

_UNSIGNED_BYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def _open(path: str) -> BinaryIO:
    """`path` opened for reading, decompressing if its content is gzip (whatever its name)."""
    with open(path, "rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exactly(f: BinaryIO, n: int, what: str, path: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated: {what} has {len(data)} of {n} bytes")
    return data


def read_idx(path: str, max_records: Optional[int] = None) -> np.ndarray:
    """Reads an IDX file of unsigned bytes into a uint8 array of its dimensions.

    With `max_records`, reads only the first records along dimension 0 (and does not check the
    rest of the file); otherwise bytes past the declared size are an error.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file: a bad magic, an element type other than unsigned byte,
            rank 0, a truncated file or trailing bytes.
    """
    with _open(path) as f:
        magic = _read_exactly(f, 4, "the magic number", path)
        if magic[0] != 0 or magic[1] != 0:
            raise ValueError(f"{path}: bad magic 0x{magic.hex()}: not an IDX file")
        if magic[2] != _UNSIGNED_BYTE:
            raise ValueError(f"{path}: unsupported element type 0x{magic[2]:02x}; only "
                             "unsigned byte (0x08) is supported")
        rank = magic[3]
        if rank == 0:
            raise ValueError(f"{path}: rank 0: an IDX array needs at least one dimension")
        header = _read_exactly(f, 4 * rank, "the header", path)
        dims = [int.from_bytes(header[4 * i:4 * i + 4], "big") for i in range(rank)]
        if max_records is not None:
            dims[0] = min(dims[0], max(max_records, 0))
        count = int(np.prod(dims))
        data = _read_exactly(f, count, "the data", path)
        if max_records is None and f.read(1):
            raise ValueError(f"{path}: bytes past the declared dimensions {dims}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _find(directory: str, base: str) -> str:
    for candidate in (base + ".gz", base):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{os.path.join(directory, base)}.gz: no such file (nor without "
                            f".gz); Debian's dataset-fashion-mnist installs it in "
                            f"{FASHION_MNIST_DIR}")


def load_fashion_mnist(directory: str = FASHION_MNIST_DIR, train: bool = True,
                       limit: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """The training (60000) or test (10000) split: (images [N, 1, 28, 28], labels [N]), both
    float32, images scaled to [0, 1]. `limit` keeps the first `limit` samples."""
    prefix = "train" if train else "t10k"
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    images = read_idx(images_path, limit)
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"), limit)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path}: expected images [N, H, W] and labels [N], got "
                         f"{list(images.shape)} and {list(labels.shape)}")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{images_path}: label {labels.max()} is not below {NUM_CLASSES}")
    # float32 division, as the engine does, so both read bitwise identical pixels.
    pixels = images.astype(np.float32)[:, np.newaxis, :, :] / np.float32(255)
    return pixels, labels.astype(np.float32)


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool = False,
            seed: int = 0, drop_last: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """One epoch of {"images": ..., "labels": ...} batches (the placeholders of
    models/lenet5.pbtxt and models/mlp_tanh.pbtxt). The last batch may be smaller unless
    `drop_last`. Shuffling uses NumPy's generator seeded by `seed`, not the engine's order."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    n = images.shape[0]
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        if drop_last and index.size < batch_size:
            return
        yield {"images": images[index], "labels": labels[index]}
