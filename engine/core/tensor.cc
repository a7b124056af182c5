#include "engine/core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace backflow {
namespace {

constexpr size_t kAlignment = 64;

std::byte* AllocateZeroed(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return static_cast<std::byte*>(p);
}

}  // namespace

size_t SizeOf(DType dtype) { return dtype == DType::kFloat64 ? 8 : 4; }

std::string_view DTypeName(DType dtype) {
  return dtype == DType::kFloat64 ? "float64" : "float32";
}

void Tensor::AlignedFree::operator()(std::byte* p) const { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape) : Tensor(dtype, std::move(shape), 0) {}

Tensor::Tensor(DType dtype, Shape shape, size_t min_bytes)
    : dtype_(dtype),
      shape_(std::move(shape)),
      num_elements_(shape_.num_elements()),
      capacity_(std::max(byte_size(), min_bytes)) {
  data_.reset(AllocateZeroed(capacity_));
}

Tensor Tensor::FromValues(DType dtype, Shape shape, std::span<const double> values) {
  Tensor t(dtype, std::move(shape));
  for (int64_t i = 0; i < t.num_elements_ && i < static_cast<int64_t>(values.size()); ++i) {
    if (dtype == DType::kFloat64) {
      t.data<double>()[i] = values[static_cast<size_t>(i)];
    } else {
      t.data<float>()[i] = static_cast<float>(values[static_cast<size_t>(i)]);
    }
  }
  return t;
}

Tensor Tensor::Scalar(DType dtype, double value) {
  return FromValues(dtype, Shape(), std::span<const double>(&value, 1));
}

Tensor::Tensor(const Tensor& other)
    : dtype_(other.dtype_),
      shape_(other.shape_),
      num_elements_(other.num_elements_),
      capacity_(other.byte_size()) {
  data_.reset(AllocateZeroed(capacity_));
  if (byte_size()) std::memcpy(data_.get(), other.data_.get(), byte_size());
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);
  return *this;
}

double Tensor::at(int64_t i) const {
  return dtype_ == DType::kFloat64 ? data<double>()[i] : static_cast<double>(data<float>()[i]);
}

std::vector<double> Tensor::ToDoubles() const {
  std::vector<double> out(static_cast<size_t>(num_elements_));
  for (int64_t i = 0; i < num_elements_; ++i) out[static_cast<size_t>(i)] = at(i);
  return out;
}

Tensor Tensor::CastTo(DType dtype) const {
  if (dtype == dtype_) return *this;
  return FromValues(dtype, shape_, ToDoubles());
}

void Tensor::Reshape(Shape shape) {
  shape_ = std::move(shape);
  num_elements_ = shape_.num_elements();
}

bool BitwiseEqual(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.byte_size() == 0 || std::memcmp(a.raw(), b.raw(), a.byte_size()) == 0);
}

}  // namespace backflow
