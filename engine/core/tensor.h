// Tensor: a dense, row-major, 64-byte-aligned array of float32, float64, int32 or int64 with a
// fully defined shape. Gates compute in a float dtype; the integer dtypes carry labels, class ids
// and token ids. Copying copies the elements; moving is cheap. Not synchronised: share a Tensor between
// threads only for reading.
#ifndef BACKFLOW_ENGINE_CORE_TENSOR_H_
#define BACKFLOW_ENGINE_CORE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/core/shape.h"

namespace backflow {

enum class DType : uint8_t { kFloat32, kFloat64, kInt32, kInt64 };

size_t SizeOf(DType dtype);
std::string_view DTypeName(DType dtype);  // "float32", "float64", "int32", "int64"
constexpr bool IsInteger(DType dtype) { return dtype == DType::kInt32 || dtype == DType::kInt64; }

template <typename T>
constexpr DType DTypeOf() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>);
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  if constexpr (std::is_same_v<T, int32_t>) return DType::kInt32;
  return DType::kInt64;
}

class Tensor {
 public:
  Tensor() = default;  // an empty float32 scalar with no storage; valid() is false
  // Zero-filled tensor. `shape` must be fully defined.
  Tensor(DType dtype, Shape shape);
  // The same with a buffer of at least `min_bytes`: room for a blocked (padded) layout of the
  // elements, which only oneDNN kernels read (see engine/ir/gate.h, TensorLayout).
  Tensor(DType dtype, Shape shape, size_t min_bytes);

  // Elements converted from doubles (row-major); values.size() must equal the element count.
  static Tensor FromValues(DType dtype, Shape shape, std::span<const double> values);
  static Tensor Scalar(DType dtype, double value);
  // A tensor whose elements are unspecified: for a caller that writes every one of them
  // (the optimizer's next parameter values), so the zero-fill pass is not paid.
  static Tensor Uninitialized(DType dtype, Shape shape);

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  bool valid() const { return data_ != nullptr || num_elements_ == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t num_elements() const { return num_elements_; }
  size_t byte_size() const { return static_cast<size_t>(num_elements_) * SizeOf(dtype_); }
  // The buffer's size: byte_size(), or more for a tensor made with min_bytes.
  size_t capacity() const { return capacity_; }

  template <typename T>
  T* data() {
    return reinterpret_cast<T*>(data_.get());
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(data_.get());
  }
  std::byte* raw() { return data_.get(); }
  const std::byte* raw() const { return data_.get(); }

  // Element i (row-major) as a double, and all elements as doubles: for tests and tools. An
  // int64 beyond 2^53 loses its low bits; use id() for integer elements.
  double at(int64_t i) const;
  // Element i of an integer tensor (int32 widened); for a float tensor, the value truncated.
  int64_t id(int64_t i) const;
  std::vector<double> ToDoubles() const;
  // The same elements converted to `dtype` (floats to integers truncate toward zero).
  Tensor CastTo(DType dtype) const;

  // Same elements under another fully defined shape with the same element count.
  void Reshape(Shape shape);
  // Keeps the first `rows` (at most dim 0) along axis 0: a prefix of the buffer, so nothing
  // moves.
  void KeepRows(int64_t rows);

 private:
  // Returns the block to the buffer cache (Note [Buffer cache] in tensor.cc).
  struct AlignedFree {
    size_t bytes;  // as allocated (no initializer: GCC would then not see it default-constructible here)
    void operator()(std::byte* p) const;
  };
  DType dtype_ = DType::kFloat32;
  Shape shape_;
  int64_t num_elements_ = 0;
  size_t capacity_ = 0;
  std::unique_ptr<std::byte[], AlignedFree> data_;
};

// The index of the first NaN or infinite element, or -1 if all are finite (always -1 for an
// integer tensor). Vectorised: it tests
// exponent bits in blocks and looks for the index only in a block that has one.
int64_t FirstNonFinite(const Tensor& tensor);
// The same over n elements of a float array.
int64_t FirstNonFinite(const float* data, int64_t n);
int64_t FirstNonFinite(const double* data, int64_t n);

// The buffer cache of Note [Buffer cache] in tensor.cc: the most bytes of freed blocks it keeps
// (default 256 MiB; 0 keeps none), and what it keeps now. ReleaseCachedBuffers frees them all.
// Thread-safe.
void SetBufferCacheCapacity(size_t bytes);
size_t CachedBufferBytes();
void ReleaseCachedBuffers();

// Uninitialised, 64-byte aligned scratch memory from the same buffer cache as tensors (Note
// [Buffer cache] in tensor.cc): oneDNN scratchpads and reorder buffers, which live for one run.
class ScratchBuffer {
 public:
  explicit ScratchBuffer(size_t bytes);
  ScratchBuffer(ScratchBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(other.bytes_) {}
  ScratchBuffer& operator=(ScratchBuffer&&) = delete;
  ~ScratchBuffer();
  void* data() const { return data_; }

 private:
  std::byte* data_;
  size_t bytes_;
};

// True if both tensors have the same dtype, shape and bytes.
bool BitwiseEqual(const Tensor& a, const Tensor& b);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_CORE_TENSOR_H_
