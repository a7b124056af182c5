#include "engine/exec/dnnl_runtime.h"

#include <omp.h>

#include <cmath>

#include "engine/exec/core_budget.h"

namespace backflow::dnnl_rt {

const dnnl::engine& CpuEngine() {
  static const dnnl::engine* const engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

Status Execute(const dnnl::primitive& primitive, const Args& args, int threads,
               std::string_view what) {
  try {
    thread_local dnnl::stream stream(CpuEngine());
    omp_set_num_threads(threads);
    primitive.execute(stream, args);
    stream.wait();
    return Status::Ok();
  } catch (const dnnl::error& e) {
    return InternalError(std::string(what) + ": oneDNN: " + e.what());
  }
}

int TeamFor(std::string_view op, std::span<const Shape> inputs, const Shape& output) {
  const int all = CoreBudget::Global().total();
  auto elements = [](const Shape& s) { return static_cast<double>(s.num_elements()); };
  const bool conv = op == "conv2d" || op == "conv2d_backward_data" ||
                    op == "conv2d_backward_weights";
  if (conv && inputs.size() >= 2) {
    // 2 * (elements of the convolution's output y) * C*KH*KW, the same for its two
    // backward passes: y is the output (forward), or dy (input 0 of backward data, input 1
    // of backward weights); w is input 1, or the output of backward weights.
    const bool weights = op == "conv2d_backward_weights";
    const Shape& y = op == "conv2d" ? output : inputs[weights ? 1 : 0];
    const Shape& w = weights ? output : inputs[1];
    if (w.rank() != 4 || w.dim(0) == 0) return 1;
    const double flops = 2 * elements(y) * elements(w) / static_cast<double>(w.dim(0));
    return flops >= kTeamFlops ? all : 1;
  }
  if ((op == "matmul" || op == "linear") && inputs.size() >= 2) {
    // [M, K] x [K, N] -> [M, N], transposed or not: M*K*N = sqrt(MK * KN * MN).
    const double mkn = std::sqrt(elements(inputs[0]) * elements(inputs[1]) * elements(output));
    return 2 * mkn >= kTeamFlops ? all : 1;
  }
  double touched = elements(output);
  for (const Shape& s : inputs) touched += elements(s);
  return touched >= kTeamElements ? all : 1;
}

TeamScope::TeamScope(int team) : previous_(omp_get_max_threads()) { omp_set_num_threads(team); }

TeamScope::~TeamScope() { omp_set_num_threads(previous_); }

int CompileTeam() {
  const int team = omp_get_max_threads();
  return team >= CoreBudget::Global().total() ? Kernel::kAllCores : team;
}

dnnl::memory::dims Dims(const Shape& shape) {
  return dnnl::memory::dims(shape.dims().begin(), shape.dims().end());
}

dnnl::memory::desc PlainDesc(const Shape& shape) {
  using tag = dnnl::memory::format_tag;
  static constexpr tag kTags[] = {tag::a, tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde,
                                  tag::abcdef};
  if (shape.rank() == 0) return dnnl::memory::desc({1}, dnnl::memory::data_type::f32, tag::a);
  return dnnl::memory::desc(Dims(shape), dnnl::memory::data_type::f32,
                            kTags[static_cast<size_t>(shape.rank())]);
}

dnnl::memory::desc DescOf(const LayoutPtr& layout, const Shape& shape) {
  return layout ? layout->md : PlainDesc(shape);
}

LayoutPtr LayoutOf(const dnnl::memory::desc& md, const Shape& shape) {
  if (md == PlainDesc(shape)) return nullptr;
  return std::make_shared<const TensorLayout>(TensorLayout{md});
}

}  // namespace backflow::dnnl_rt
