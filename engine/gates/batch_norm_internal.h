// The parts the batch-norm gates share: the input's layout as [N, C, S] and the per-channel
// statistics a run normalises with. Kernels are the reference loops, float32 accumulating in
// double (Note [Float32 sums accumulate in double]).
#ifndef BACKFLOW_ENGINE_GATES_BATCH_NORM_INTERNAL_H_
#define BACKFLOW_ENGINE_GATES_BATCH_NORM_INTERNAL_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/shape.h"
#include "engine/core/tensor.h"
#include "engine/ir/gate.h"
#include "engine/ir/gate_registry.h"

namespace backflow::batch_norm {

inline constexpr double kDefaultMomentum = 0.1;
inline constexpr double kDefaultEpsilon = 1e-5;

// x as [n, c, s]: s = H * W for rank 4, 1 for rank 2.
struct Dims {
  int64_t n = 0;
  int64_t c = 0;
  int64_t s = 1;
  static Dims Of(const Shape& x) {
    Dims d{x.dim(0), x.dim(1), 1};
    for (int i = 2; i < x.rank(); ++i) d.s *= x.dim(i);
    return d;
  }
  int64_t count() const { return n * s; }  // elements per channel
  int64_t at(int64_t i, int64_t ch, int64_t j) const { return (i * c + ch) * s + j; }
};

// Per-channel mean and biased variance of x over n and s.
template <typename T>
void BatchStats(const Dims& d, const T* x, std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(static_cast<size_t>(d.c), 0.0);
  var.assign(static_cast<size_t>(d.c), 0.0);
  const double count = static_cast<double>(d.count());
  for (int64_t ch = 0; ch < d.c; ++ch) {
    double sum = 0;
    for (int64_t i = 0; i < d.n; ++i) {
      for (int64_t j = 0; j < d.s; ++j) sum += static_cast<double>(x[d.at(i, ch, j)]);
    }
    const double m = count > 0 ? sum / count : 0.0;
    double sq = 0;
    for (int64_t i = 0; i < d.n; ++i) {
      for (int64_t j = 0; j < d.s; ++j) {
        const double e = static_cast<double>(x[d.at(i, ch, j)]) - m;
        sq += e * e;
      }
    }
    mean[static_cast<size_t>(ch)] = m;
    var[static_cast<size_t>(ch)] = count > 0 ? sq / count : 0.0;
  }
}

// The mean and 1 / sqrt(var + eps) a run normalises with: the batch's in training, the running
// ones (inputs 1 and 2 of `inputs`, after x first) in inference.
struct Stats {
  std::vector<double> mean;
  std::vector<double> inv_std;
};

template <typename T>
Stats StatsFor(const Dims& d, const T* x, const T* running_mean, const T* running_var,
               bool training, double eps) {
  Stats st;
  std::vector<double> var;
  if (training) {
    BatchStats(d, x, st.mean, var);
  } else {
    for (int64_t ch = 0; ch < d.c; ++ch) {
      st.mean.push_back(static_cast<double>(running_mean[ch]));
      var.push_back(static_cast<double>(running_var[ch]));
    }
  }
  for (double v : var) st.inv_std.push_back(1.0 / std::sqrt(v + eps));
  return st;
}

// The shape rule every batch-norm gate shares: x (input 0) is [N, C] or [N, C, H, W] and inputs
// first_c, ... are [C]. Errors name the node and the shapes.
Status CheckShapes(const ShapeContext& ctx, size_t first_c);

// The float32 kernels of batch_norm and batch_norm_grad_x (oneDNN, batch_norm_dnnl.cc).
StatusOr<std::unique_ptr<Kernel>> CompileDnnlForward(const CompileContext& ctx, double eps,
                                                     bool affine);
StatusOr<std::unique_ptr<Kernel>> CompileDnnlGradX(const CompileContext& ctx, double eps,
                                                   bool affine);

// The gradient gates (batch_norm_backward.cc).
void RegisterGradGates(GateRegistry& registry);

}  // namespace backflow::batch_norm

#endif  // BACKFLOW_ENGINE_GATES_BATCH_NORM_INTERNAL_H_
