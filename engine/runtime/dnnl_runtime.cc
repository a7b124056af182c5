#include "engine/runtime/dnnl_runtime.h"

#include <omp.h>

#include "engine/runtime/core_budget.h"

namespace backflow::dnnl_rt {

const dnnl::engine& CpuEngine() {
  static const dnnl::engine* const engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

namespace {
thread_local uint64_t primitives_executed = 0;
}  // namespace

uint64_t PrimitivesExecutedHere() { return primitives_executed; }

Status Execute(const dnnl::primitive& primitive, const Args& args, int threads,
               std::string_view what) {
  ++primitives_executed;
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

int TeamFor(const PrimitiveWork& work) {
  const bool big = work.compute_bound ? work.flops >= kTeamFlops
                                      : work.elements_touched >= kTeamElements;
  return big ? CoreBudget::Global().total() : 1;
}

TeamScope::TeamScope(int team) : previous_(omp_get_max_threads()) { omp_set_num_threads(team); }

TeamScope::~TeamScope() { omp_set_num_threads(previous_); }

int CompileTeam() {
  const int team = omp_get_max_threads();
  return team >= CoreBudget::Global().total() ? kAllCores : team;
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
