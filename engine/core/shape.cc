#include "engine/core/shape.h"

#include <algorithm>

namespace backflow {

bool Shape::fully_defined() const {
  return std::none_of(dims_.begin(), dims_.end(), [](int64_t d) { return d < 0; });
}

int64_t Shape::num_elements() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= (d < 0 ? 1 : d);
  return n;
}

Shape Shape::WithBatch(int64_t batch) const {
  Shape out = *this;
  for (int64_t& d : out.dims_) {
    if (d == kBatchDim) d = batch;
  }
  return out;
}

std::string Shape::ToString() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += dims_[i] == kBatchDim ? std::string("N") : std::to_string(dims_[i]);
  }
  return s + "]";
}

bool BroadcastShapes(const Shape& a, const Shape& b, Shape* out) {
  const int rank = std::max(a.rank(), b.rank());
  std::vector<int64_t> dims(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    const int ia = a.rank() - rank + i;
    const int ib = b.rank() - rank + i;
    const int64_t da = ia >= 0 ? a.dim(ia) : 1;
    const int64_t db = ib >= 0 ? b.dim(ib) : 1;
    int64_t d;
    if (da == db) {
      d = da;
    } else if (da == 1) {
      d = db;
    } else if (db == 1) {
      d = da;
    } else if (da == kBatchDim) {
      d = db;
    } else if (db == kBatchDim) {
      d = da;
    } else {
      return false;
    }
    dims[static_cast<size_t>(i)] = d;
  }
  *out = Shape(std::move(dims));
  return true;
}

std::vector<int64_t> BroadcastStrides(const Shape& shape, const Shape& target) {
  const int rank = target.rank();
  std::vector<int64_t> strides(static_cast<size_t>(rank), 0);
  int64_t stride = 1;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    const int t = rank - shape.rank() + i;
    strides[static_cast<size_t>(t)] = shape.dim(i) == 1 && target.dim(t) != 1 ? 0 : stride;
    stride *= shape.dim(i);
  }
  return strides;
}

}  // namespace backflow
