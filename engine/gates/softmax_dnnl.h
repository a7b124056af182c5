// float32 kernels for softmax and log_softmax and their gradient gates on oneDNN's softmax_v2
// primitives (algorithms softmax_accurate and softmax_log), on plain tensors of any rank over any
// axis. The primitive vectorises the exponentials that the reference loops call libm for one at
// a time; it computes in float32, which the tests bound against the float64 reference loops.
#ifndef BACKFLOW_ENGINE_GATES_SOFTMAX_DNNL_H_
#define BACKFLOW_ENGINE_GATES_SOFTMAX_DNNL_H_

#include <memory>

#include "engine/core/status.h"
#include "engine/ir/gate.h"

namespace backflow {

// y = softmax(x) or log_softmax(x) over `axis` (resolved, >= 0). Input 0: x.
StatusOr<std::unique_ptr<Kernel>> CompileDnnlSoftmax(const CompileContext& ctx, int axis, bool log);
// dx from y and dy (the "softmax_grad" / "log_softmax_grad" gates' inputs, in that order).
StatusOr<std::unique_ptr<Kernel>> CompileDnnlSoftmaxGrad(const CompileContext& ctx, int axis,
                                                         bool log);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_SOFTMAX_DNNL_H_
