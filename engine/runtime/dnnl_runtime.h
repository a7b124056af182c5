// The oneDNN runtime shared by every oneDNN-backed gate: one CPU engine per process, one stream
// per thread, execution under the core budget, and oneDNN errors turned into Status values.
//
// Kernels create their primitives (and any reorders) once, in Gate::Compile, and only bind
// memory and execute per run. Debian's oneDNN is built for float32 on CPU with an OpenMP
// runtime; see Note [Threads never exceed cores] in engine/runtime/core_budget.h.
#ifndef BACKFLOW_ENGINE_RUNTIME_DNNL_RUNTIME_H_
#define BACKFLOW_ENGINE_RUNTIME_DNNL_RUNTIME_H_

#include <oneapi/dnnl/dnnl.hpp>

#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/runtime/layout.h"

namespace backflow {

// A tensor's non-plain layout (see engine/ir/gate.h): the oneDNN descriptor it was written
// with, whose size may exceed the plain size (blocked channels are padded).
struct TensorLayout {
  dnnl::memory::desc md;
};

}  // namespace backflow

namespace backflow::dnnl_rt {

using Args = std::unordered_map<int, dnnl::memory>;

// The process's CPU engine. Thread-safe.
const dnnl::engine& CpuEngine();

// Runs `primitive` on the calling thread's stream with an OpenMP team of `threads`, and waits.
// A dnnl::error becomes Internal naming `what`.
Status Execute(const dnnl::primitive& primitive, const Args& args, int threads,
               std::string_view what);
// How many primitives Execute has run on the calling thread since it started: the difference of
// two readings around a node is what the node executed (Note [Run profiles] in
// engine/exec/run_profile.h).
uint64_t PrimitivesExecutedHere();

// Calls `make` (which builds descriptors or primitives and may throw dnnl::error) and returns
// its result, or InvalidArgument naming `what` with oneDNN's message.
template <typename F>
auto Build(std::string_view what, F&& make) -> StatusOr<decltype(make())> {
  try {
    return make();
  } catch (const dnnl::error& e) {
    return InvalidArgumentError(std::string(what) + ": oneDNN: " + e.what());
  }
}

dnnl::memory::dims Dims(const Shape& shape);
// Note [Team size per primitive]
// A oneDNN primitive runs on an OpenMP team whose size is fixed when its primitive descriptor
// is created (oneDNN 2.6 partitions the work then, from omp_get_max_threads()). A team of every
// core pays an OpenMP wake-up and barrier per execution (tens of microseconds on this class of
// machine with GOMP_SPINCOUNT=0) and holds every core of the CoreBudget while it runs, so
// independent branches (a backward pass's dW and dx, say) wait for each other. Measured on 2
// cores (docs/PERFORMANCE.md): with every primitive on one thread, a LeNet-5 training step
// went from 4.4 to 2.5 ms and an MLP step from 0.87 to 0.53 ms, because oneTBB then runs the
// branches side by side; even the CIFAR-sized CNN, whose 302 MFLOP convolutions had teams of
// both cores at a 64 MFLOP threshold, trained faster with none (4,550-4,600 against
// 3,635-4,180 samples/s, three runs each). So a primitive gets a team of every core only when
// its work is far beyond that: kTeamFlops of arithmetic for convolutions and matrix products,
// kTeamElements touched for memory-bound ones (eltwise, pooling); below them, parallelism comes
// from independent nodes, concurrent requests and the optimizer's slices. Each gate states its
// work (Gate::Flops, Gate::compute_bound in engine/ir/gate.h); the executor turns that into a
// PrimitiveWork, asks TeamFor, and compiles the node's kernel inside a TeamScope; the kernel
// reads its team with CompileTeam() and asks the CoreBudget for that many cores.
inline constexpr double kTeamFlops = 1e9;
inline constexpr double kTeamElements = 16e6;

// What one application of a primitive costs.
struct PrimitiveWork {
  double flops = 0;             // arithmetic (a multiply-add counts 2)
  double elements_touched = 0;  // elements of its inputs and output
  bool compute_bound = false;   // true: judged by flops (convolutions, matrix products)
};

// The team a primitive gets: 1, or every core of CoreBudget::Global().
int TeamFor(const PrimitiveWork& work);

// Sets the calling thread's OpenMP thread count to `team` until destroyed (primitive
// descriptors created meanwhile are partitioned for that team).
class TeamScope {
 public:
  explicit TeamScope(int team);
  ~TeamScope();
  TeamScope(const TeamScope&) = delete;
  TeamScope& operator=(const TeamScope&) = delete;

 private:
  int previous_;
};

// For a kernel created inside a TeamScope: the cores to ask for, as Kernel::cores() returns
// them (kAllCores for a team of every core).
int CompileTeam();

// float32 descriptor in plain row-major order (tags a, ab, abc, abcd, ...).
dnnl::memory::desc PlainDesc(const Shape& shape);
// The descriptor of a tensor written in `layout`, or the plain one for a null layout.
dnnl::memory::desc DescOf(const LayoutPtr& layout, const Shape& shape);
// `md` as a layout, or null if it is the plain layout of `shape`.
LayoutPtr LayoutOf(const dnnl::memory::desc& md, const Shape& shape);

}  // namespace backflow::dnnl_rt

#endif  // BACKFLOW_ENGINE_RUNTIME_DNNL_RUNTIME_H_
