"""backflow.tensors: NumPy <-> backflow.v1.Tensor, without a server."""

from __future__ import annotations

import numpy as np
import pytest

from backflow import to_numpy, to_tensor
from backflow.tensors import data_type, to_tensor_map
from backflow.v1 import tensor_pb2


@pytest.mark.parametrize("shape", [(), (1,), (3,), (2, 3), (2, 1, 4, 5), (0,), (3, 0, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_shape_dtype_and_values(shape: tuple, dtype: type) -> None:
    values = np.random.default_rng(1).normal(size=shape).astype(dtype)
    tensor = to_tensor(values)
    assert list(tensor.shape) == list(shape)
    assert tensor.dtype == (tensor_pb2.FLOAT64 if dtype is np.float64 else tensor_pb2.FLOAT32)
    assert len(tensor.data) == values.size * np.dtype(dtype).itemsize
    back = to_numpy(tensor)
    assert back.shape == shape and back.dtype == dtype
    np.testing.assert_array_equal(back, values)
    back[...] = 7  # a writable copy, not a view of the message's bytes
    np.testing.assert_array_equal(to_numpy(tensor), values)


def test_bytes_are_little_endian_row_major() -> None:
    tensor = to_tensor(np.array([[1.0, 2.0], [3.0, -0.5]], dtype=np.float32))
    assert tensor.data == np.array([1.0, 2.0, 3.0, -0.5], dtype="<f4").tobytes()
    assert to_tensor(np.arange(6, dtype=">f8").reshape(2, 3)).data == \
        np.arange(6, dtype="<f8").tobytes()
    transposed = np.arange(6, dtype=np.float32).reshape(2, 3).T  # not C-contiguous
    assert to_tensor(transposed).data == np.array([0, 3, 1, 4, 2, 5], dtype="<f4").tobytes()


def test_defaults_to_float32_except_float64_arrays() -> None:
    assert to_tensor(1.5).dtype == tensor_pb2.FLOAT32  # a Python float
    assert to_tensor([1, 2, 3]).dtype == tensor_pb2.FLOAT32
    assert to_tensor(np.array([True, False])).dtype == tensor_pb2.FLOAT32
    assert to_tensor(np.int64(4)).dtype == tensor_pb2.FLOAT32
    assert to_tensor(np.float64(0.1)).dtype == tensor_pb2.FLOAT64
    assert to_tensor(np.zeros(2)).dtype == tensor_pb2.FLOAT64


def test_scalar_converts_to_shape_empty() -> None:
    tensor = to_tensor(-2.0, dtype="float64")
    assert list(tensor.shape) == [] and tensor.dtype == tensor_pb2.FLOAT64
    value = to_numpy(tensor)
    assert value.shape == () and value.dtype == np.float64 and float(value) == -2.0


def test_explicit_dtype_converts() -> None:
    tensor = to_tensor(np.array([0.1, 0.2]), dtype=np.float32)
    assert tensor.dtype == tensor_pb2.FLOAT32
    np.testing.assert_array_equal(to_numpy(tensor), np.array([0.1, 0.2], dtype=np.float32))
    widened = to_tensor(tensor, dtype="float64")
    assert widened.dtype == tensor_pb2.FLOAT64
    assert to_numpy(widened)[0] == np.float64(np.float32(0.1))
    assert to_tensor(tensor) is tensor


def test_unspecified_dtype_reads_as_float32() -> None:
    tensor = tensor_pb2.Tensor(shape=[2], data=np.array([1, 2], dtype="<f4").tobytes())
    np.testing.assert_array_equal(to_numpy(tensor), np.array([1, 2], dtype=np.float32))


@pytest.mark.parametrize("value", [np.array(["a"]), np.array([1 + 2j]), [object()]])
def test_rejects_values_that_are_not_real_numbers(value: object) -> None:
    with pytest.raises(TypeError, match="real numbers"):
        to_tensor(value, name="x")


def test_rejects_ragged_lists() -> None:
    with pytest.raises(ValueError, match="rectangular"):
        to_tensor([[1, 2], [3]])


@pytest.mark.parametrize("dtype", ["int16", np.float16, "bogus"])
def test_rejects_other_dtypes(dtype: object) -> None:
    with pytest.raises(ValueError, match="float32, float64, int32 or int64"):
        to_tensor([1.0], dtype=dtype)


def test_int_arrays_are_sent_as_they_are() -> None:
    ids = np.array([[3, -1], [2**53 + 1, 0]], dtype=np.int64)  # 2**53 + 1 is no double
    tensor = to_tensor(ids)
    assert tensor.dtype == tensor_pb2.INT64
    assert tensor.data == ids.astype("<i8").tobytes()
    back = to_numpy(tensor)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, ids)
    narrow = to_tensor(np.array([5, 6], dtype=">i4"))
    assert narrow.dtype == tensor_pb2.INT32
    np.testing.assert_array_equal(to_numpy(narrow), [5, 6])
    # Asked for a float dtype (a float-label placeholder), integers convert as before.
    assert to_tensor(ids, dtype="float32").dtype == tensor_pb2.FLOAT32
    assert to_tensor(np.int64(4)).dtype == tensor_pb2.FLOAT32  # a scalar is a number


def test_tensor_maps_keep_integer_placeholders_integer() -> None:
    labels = np.array([0, 2, 1])
    wire = to_tensor_map({"ids": labels, "labels": labels, "floats": [0.5]}, "float64",
                         integer_inputs={"ids": tensor_pb2.INT32, "floats": tensor_pb2.INT64})
    assert wire["ids"].dtype == tensor_pb2.INT32
    np.testing.assert_array_equal(to_numpy(wire["ids"]), [0, 2, 1])
    assert wire["labels"].dtype == tensor_pb2.FLOAT64  # a float-label placeholder
    assert wire["floats"].dtype == tensor_pb2.FLOAT32  # left for the server to name


def test_to_numpy_rejects_inconsistent_messages() -> None:
    truncated = tensor_pb2.Tensor(shape=[2, 2], dtype=tensor_pb2.FLOAT32, data=b"\0" * 12)
    with pytest.raises(ValueError, match="needs 16 bytes of data, has 12"):
        to_numpy(truncated)
    with pytest.raises(ValueError, match="negative"):
        to_numpy(tensor_pb2.Tensor(shape=[-1], dtype=tensor_pb2.FLOAT32))
    with pytest.raises(ValueError, match="unknown dtype"):
        to_numpy(tensor_pb2.Tensor(shape=[], dtype=7, data=b"\0" * 4))


def test_data_type_names() -> None:
    assert data_type("float32") == tensor_pb2.FLOAT32
    assert data_type(np.float64) == tensor_pb2.FLOAT64
    assert data_type(tensor_pb2.FLOAT64) == tensor_pb2.FLOAT64
    assert data_type(tensor_pb2.DATA_TYPE_UNSPECIFIED) == tensor_pb2.FLOAT32
