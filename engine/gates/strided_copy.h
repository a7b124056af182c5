// StridedCopyKernel: copies a box of elements from input 0 into the output, each side addressed
// by an offset and a stride per dimension, after filling the output with a constant if asked.
// The kernel of slice (a box read with steps), slice_grad (a box written into zeros) and pad (x
// written into a tensor of the fill value). Pure data movement: no arithmetic, no oneDNN.
#ifndef BACKFLOW_ENGINE_GATES_STRIDED_COPY_H_
#define BACKFLOW_ENGINE_GATES_STRIDED_COPY_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "engine/core/shape.h"
#include "engine/ir/gate.h"

namespace backflow {

// to[to_offset + sum_d i_d * to_strides[d]] = from[from_offset + sum_d i_d * from_strides[d]]
// for every index i of the box 0 <= i_d < extent[d]. Strides are in elements and may be
// negative (a slice with a negative step); every address the box reaches must be in bounds.
struct StridedCopy {
  std::vector<int64_t> extent;
  int64_t from_offset = 0;
  std::vector<int64_t> from_strides;
  int64_t to_offset = 0;
  std::vector<int64_t> to_strides;
};

// Row-major strides of a fully defined shape, in elements.
inline std::vector<int64_t> RowMajorStrides(const Shape& shape) {
  std::vector<int64_t> strides(static_cast<size_t>(shape.rank()), 1);
  for (int d = shape.rank() - 2; d >= 0; --d) {
    strides[static_cast<size_t>(d)] = strides[static_cast<size_t>(d + 1)] * shape.dim(d + 1);
  }
  return strides;
}

template <typename T>
void CopyBox(const StridedCopy& box, const T* from, T* to) {
  const size_t rank = box.extent.size();
  int64_t total = 1;
  for (int64_t e : box.extent) total *= e;
  if (total == 0) return;
  if (rank == 0) {
    to[box.to_offset] = from[box.from_offset];
    return;
  }
  const int64_t inner = box.extent[rank - 1];
  const int64_t from_step = box.from_strides[rank - 1];
  const int64_t to_step = box.to_strides[rank - 1];
  std::vector<int64_t> index(rank, 0);
  int64_t f = box.from_offset;
  int64_t t = box.to_offset;
  for (int64_t done = 0; done < total; done += inner) {
    for (int64_t j = 0; j < inner; ++j) to[t + j * to_step] = from[f + j * from_step];
    for (size_t d = rank - 1; d-- > 0;) {  // advance the outer multi-index
      f += box.from_strides[d];
      t += box.to_strides[d];
      if (++index[d] < box.extent[d]) break;
      f -= box.from_strides[d] * index[d];
      t -= box.to_strides[d] * index[d];
      index[d] = 0;
    }
  }
}

// Fills the output with `fill` (if set), then copies the box from input 0 into it. Without a
// fill the box must cover the whole output.
template <typename T>
class StridedCopyKernel : public Kernel {
 public:
  StridedCopyKernel(StridedCopy box, std::optional<double> fill)
      : box_(std::move(box)), fill_(fill) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    T* y = ctx.output->data<T>();
    if (fill_) std::fill(y, y + ctx.output->num_elements(), static_cast<T>(*fill_));
    CopyBox(box_, ctx.inputs[0]->data<T>(), y);
    return Status::Ok();
  }

 private:
  StridedCopy box_;
  std::optional<double> fill_;
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_STRIDED_COPY_H_
