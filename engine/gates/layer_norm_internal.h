// The parts the layer-norm gates share: x as [outer, n] groups, one group's statistics (in
// double, Note [Float32 sums accumulate in double]) and the float32 kernels on oneDNN
// (layer_norm_dnnl.cc).
#ifndef BACKFLOW_ENGINE_GATES_LAYER_NORM_INTERNAL_H_
#define BACKFLOW_ENGINE_GATES_LAYER_NORM_INTERNAL_H_

#include <cmath>
#include <cstdint>
#include <memory>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/ir/gate.h"

namespace backflow::layer_norm {

// x seen as [outer, n]: outer groups of n normalised elements each.
struct Groups {
  int64_t outer = 1;
  int64_t n = 1;
  static Groups Of(const Shape& x, int k) {
    Groups g;
    for (int i = 0; i < x.rank(); ++i) (i < x.rank() - k ? g.outer : g.n) *= x.dim(i);
    return g;
  }
};

// Mean and biased variance of one group of n elements.
template <typename T>
void GroupMoments(const T* x, int64_t n, double& mean, double& var) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(x[j]);
  mean = sum / static_cast<double>(n);
  double sq = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double d = static_cast<double>(x[j]) - mean;
    sq += d * d;
  }
  var = sq / static_cast<double>(n);
}

// The float32 kernels on oneDNN's layer_normalization primitives, which normalise over the last
// axis: x is viewed as [outer, n] (its trailing k axes flattened), weight and bias as [n].
// layer_norm: inputs x, weight?, bias?. layer_norm_grad_x: inputs x, dy, weight?.
StatusOr<std::unique_ptr<Kernel>> CompileDnnlForward(const CompileContext& ctx, Groups groups,
                                                     double eps, bool affine);
StatusOr<std::unique_ptr<Kernel>> CompileDnnlGradX(const CompileContext& ctx, Groups groups,
                                                   double eps, bool affine);

}  // namespace backflow::layer_norm

#endif  // BACKFLOW_ENGINE_GATES_LAYER_NORM_INTERNAL_H_
