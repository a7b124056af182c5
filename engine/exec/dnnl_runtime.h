// The oneDNN runtime shared by every oneDNN-backed gate: one CPU engine per process, one stream
// per thread, execution under the core budget, and oneDNN errors turned into Status values.
//
// Kernels create their primitives (and any reorders) once, in Gate::Compile, and only bind
// memory and execute per run. Debian's oneDNN is built for float32 on CPU with an OpenMP
// runtime; see Note [Threads never exceed cores] in engine/exec/core_budget.h.
#ifndef BACKFLOW_ENGINE_EXEC_DNNL_RUNTIME_H_
#define BACKFLOW_ENGINE_EXEC_DNNL_RUNTIME_H_

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/gates/gate.h"

namespace backflow {

// A tensor's non-plain layout (see engine/gates/gate.h): the oneDNN descriptor it was written
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
// float32 descriptor in plain row-major order (tags a, ab, abc, abcd, ...).
dnnl::memory::desc PlainDesc(const Shape& shape);
// The descriptor of a tensor written in `layout`, or the plain one for a null layout.
dnnl::memory::desc DescOf(const LayoutPtr& layout, const Shape& shape);
// `md` as a layout, or null if it is the plain layout of `shape`.
LayoutPtr LayoutOf(const dnnl::memory::desc& md, const Shape& shape);

}  // namespace backflow::dnnl_rt

#endif  // BACKFLOW_ENGINE_EXEC_DNNL_RUNTIME_H_
