// LayoutPtr: how a tensor's elements sit in its buffer when they are not plain row-major.
//
// The definition (a oneDNN memory descriptor) is in engine/runtime/dnnl_runtime.h; layers that
// only pass layouts along (the op interface in engine/ir/gate.h, the executor) see this opaque
// pointer and need no oneDNN include. A null LayoutPtr means plain. See Note [Layouts between
// oneDNN gates] in engine/exec/plan.h.
#ifndef BACKFLOW_ENGINE_RUNTIME_LAYOUT_H_
#define BACKFLOW_ENGINE_RUNTIME_LAYOUT_H_

#include <memory>

namespace backflow {

struct TensorLayout;
using LayoutPtr = std::shared_ptr<const TensorLayout>;

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_RUNTIME_LAYOUT_H_
