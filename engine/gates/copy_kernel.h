// CopyKernel: output = input 0's bytes. The kernel of every gate that only relabels a shape
// (reshape, flatten, reshape_like).
#ifndef BACKFLOW_ENGINE_GATES_COPY_KERNEL_H_
#define BACKFLOW_ENGINE_GATES_COPY_KERNEL_H_

#include <cstring>

#include "engine/ir/gate.h"

namespace backflow {

// The output has input 0's element count and dtype.
class CopyKernel : public Kernel {
 public:
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    if (ctx.output->byte_size() != 0) {
      std::memcpy(ctx.output->raw(), ctx.inputs[0]->raw(), ctx.output->byte_size());
    }
    return Status::Ok();
  }
};

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_COPY_KERNEL_H_
