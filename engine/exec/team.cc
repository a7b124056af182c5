#include "engine/exec/team.h"

#include "engine/runtime/dnnl_runtime.h"

namespace backflow {

int TeamForNode(const Gate& gate, std::span<const Shape> inputs, const Shape& output,
                const Attributes& attrs) {
  dnnl_rt::PrimitiveWork work{.compute_bound = gate.compute_bound()};
  if (work.compute_bound) {
    work.flops = static_cast<double>(gate.Flops(FlopsContext{inputs, output, attrs}));
  } else {
    work.elements_touched = static_cast<double>(output.num_elements());
    for (const Shape& s : inputs) work.elements_touched += static_cast<double>(s.num_elements());
  }
  return dnnl_rt::TeamFor(work);
}

}  // namespace backflow
