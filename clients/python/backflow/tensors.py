"""Conversion between NumPy arrays and backflow.v1.Tensor messages.

A Tensor carries a shape, a dtype (FLOAT32, FLOAT64, INT32 or INT64) and its elements as raw
little-endian bytes in row-major order. `to_tensor` accepts arrays, Python numbers and nested
lists; it sends float32 unless told otherwise, except that float64 NumPy arrays (and NumPy
float64 scalars) stay float64 and int32 and int64 NumPy arrays stay integers (labels, ids). `to_numpy` returns a fresh, writable array of the tensor's shape and dtype.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Union

import numpy as np

from backflow.v1 import tensor_pb2

Tensor = tensor_pb2.Tensor
DataType = tensor_pb2.DataType

#: What a caller may name a dtype by: "float32", "float64", np.float32, np.dtype("f8"),
#: or the DataType enum value itself.
DTypeLike = Union[str, type, np.dtype, int, None]

_WIRE_DTYPES = {
    tensor_pb2.FLOAT32: np.dtype("<f4"),
    tensor_pb2.FLOAT64: np.dtype("<f8"),
    tensor_pb2.DATA_TYPE_UNSPECIFIED: np.dtype("<f4"),  # the API reads it as FLOAT32
    tensor_pb2.INT32: np.dtype("<i4"),
    tensor_pb2.INT64: np.dtype("<i8"),
}

#: The integer wire dtypes: placeholders of labels, class ids and token ids.
INTEGER_TYPES = (tensor_pb2.INT32, tensor_pb2.INT64)


def data_type(dtype: DTypeLike) -> int:
    """Returns the DataType enum value (FLOAT32, FLOAT64, INT32 or INT64) that `dtype` names.

    Raises:
        ValueError: `dtype` is none of float32, float64, int32 and int64.
    """
    if dtype is None:
        raise ValueError("dtype is None: use float32 or float64")
    if isinstance(dtype, int) and not isinstance(dtype, bool) and dtype in _WIRE_DTYPES:
        return tensor_pb2.FLOAT32 if dtype == tensor_pb2.DATA_TYPE_UNSPECIFIED else dtype
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise ValueError(f"unsupported dtype {dtype!r}: use float32, float64, int32 or int64") \
            from error
    if resolved.kind == "f" and resolved.itemsize in (4, 8):  # either byte order
        return tensor_pb2.FLOAT32 if resolved.itemsize == 4 else tensor_pb2.FLOAT64
    if resolved.kind == "i" and resolved.itemsize in (4, 8):
        return tensor_pb2.INT32 if resolved.itemsize == 4 else tensor_pb2.INT64
    raise ValueError(f"unsupported dtype {dtype!r}: use float32, float64, int32 or int64")


def numpy_dtype(dtype: DTypeLike) -> np.dtype:
    """The little-endian NumPy dtype for `dtype` (see `data_type`)."""
    return _WIRE_DTYPES[data_type(dtype)]


def is_integer_array(value: Any) -> bool:
    """True for an int32 or int64 NumPy array (in either byte order): sent as it is."""
    return (isinstance(value, np.ndarray) and value.dtype.kind == "i"
            and value.dtype.itemsize in (4, 8))


def is_float64(value: Any) -> bool:
    """True for a float64 NumPy array or scalar (in either byte order)."""
    return (isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind == "f"
            and value.dtype.itemsize == 8)


def _as_array(value: Any, name: str) -> np.ndarray:
    """`value` as an array of real numbers, rejecting anything that is not one."""
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name}: not a rectangular array ({error})") from error
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got an array of {array.dtype}")
    return array


def to_tensor(value: Any, dtype: DTypeLike = None, name: str = "tensor") -> Tensor:
    """Converts an array, a number or a nested list to a backflow.v1.Tensor.

    Args:
        value: anything np.asarray accepts that holds real numbers (booleans and integers are
            converted to floating point). A Tensor message is returned as it is, or converted
            if `dtype` asks for another type.
        dtype: the element type to send. None: float64 for float64 NumPy arrays and scalars,
            the array's own dtype for int32 and int64 NumPy arrays, float32 for everything else
            (Python floats and integers included).
        name: names the value in error messages.

    Raises:
        TypeError: `value` holds something other than real numbers (strings, complex, objects).
        ValueError: `value` is ragged, or `dtype` is not float32, float64, int32 or int64.
    """
    if isinstance(value, Tensor):
        if dtype is None or data_type(dtype) == data_type(value.dtype):
            return value
        value = to_numpy(value)
    array = _as_array(value, name)
    if dtype is None:
        dtype = (value.dtype if is_integer_array(value)
                 else np.float64 if is_float64(value) else np.float32)
    wire = numpy_dtype(dtype)
    return Tensor(shape=list(array.shape), dtype=data_type(dtype),
                  data=np.ascontiguousarray(array, dtype=wire).tobytes())


def to_numpy(tensor: Tensor) -> np.ndarray:
    """Converts a backflow.v1.Tensor to a new NumPy array of its shape and dtype.

    Raises:
        ValueError: the dtype is unknown, a dimension is negative, or the data's length is not
            product(shape) * itemsize.
    """
    if tensor.dtype not in _WIRE_DTYPES:
        raise ValueError(f"tensor has unknown dtype {tensor.dtype}")
    wire = _WIRE_DTYPES[tensor.dtype]
    shape = tuple(tensor.shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"tensor shape {list(shape)} has a negative dimension")
    expected = math.prod(shape) * wire.itemsize
    if len(tensor.data) != expected:
        raise ValueError(f"tensor of shape {list(shape)} and dtype {wire.name} needs "
                         f"{expected} bytes of data, has {len(tensor.data)}")
    return np.frombuffer(tensor.data, dtype=wire).reshape(shape).astype(wire.newbyteorder("="))


def to_tensor_map(values: Optional[Mapping[str, Any]], dtype: DTypeLike = None,
                  integer_inputs: Optional[Mapping[str, int]] = None) -> dict[str, Tensor]:
    """Converts each value of a name -> array mapping with `to_tensor` (None: empty).

    `integer_inputs` names the placeholders that take integers (name -> INT32 or INT64): an
    integer array (or list) for one is sent in that dtype, anything else as it is (so the server
    names a float array fed to it); every other value is converted to `dtype`.
    """
    integer_inputs = integer_inputs or {}

    def convert(name: str, value: Any) -> Tensor:
        what = f"tensor '{name}'"
        if name not in integer_inputs:
            return to_tensor(value, dtype, name=what)
        if not isinstance(value, Tensor) and _as_array(value, what).dtype.kind in "iu":
            return to_tensor(value, integer_inputs[name], name=what)
        return to_tensor(value, None, name=what)

    return {name: convert(name, value) for name, value in (values or {}).items()}


def to_numpy_map(tensors: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Converts each Tensor of a name -> Tensor mapping with `to_numpy`, sorted by name."""
    return {name: to_numpy(tensors[name]) for name in sorted(tensors)}
