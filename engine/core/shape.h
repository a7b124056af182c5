// Shape: the dimensions of a tensor, outermost first.
//
// A dimension of kBatchDim (-1) stands for the batch size, which a graph leaves open and a run
// fixes. All open dimensions of one run are the same batch size. A shape with no open dimension
// is "fully defined"; only those describe real tensors.
#ifndef BACKFLOW_ENGINE_CORE_SHAPE_H_
#define BACKFLOW_ENGINE_CORE_SHAPE_H_

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace backflow {

inline constexpr int64_t kBatchDim = -1;

class Shape {
 public:
  Shape() = default;  // a scalar
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}
  explicit Shape(std::span<const int64_t> dims) : dims_(dims.begin(), dims.end()) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  int64_t dim(int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& dim(int i) { return dims_[static_cast<size_t>(i)]; }
  const std::vector<int64_t>& dims() const { return dims_; }

  bool fully_defined() const;
  // Product of the dimensions; 1 for a scalar. Open dimensions count as 1.
  int64_t num_elements() const;
  // This shape with every open dimension replaced by `batch`.
  Shape WithBatch(int64_t batch) const;

  std::string ToString() const;  // "[N, 784]", "[]"

  friend bool operator==(const Shape&, const Shape&) = default;

 private:
  std::vector<int64_t> dims_;
};

// NumPy broadcasting of two shapes (right-aligned; a dimension of 1 stretches). Open dimensions
// broadcast with 1 and with each other; against a known size > 1 they resolve to that size (the
// run-time check then catches a mismatched batch). Returns false if the shapes are incompatible.
bool BroadcastShapes(const Shape& a, const Shape& b, Shape* out);

// Row-major strides of `shape` in elements, with 0 for dimensions that `shape` broadcasts along
// to reach `target` (which has rank >= shape.rank()). Both shapes must be fully defined.
std::vector<int64_t> BroadcastStrides(const Shape& shape, const Shape& target);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_CORE_SHAPE_H_
