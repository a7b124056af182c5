// Batch normalisation over the channel axis 1 of [N, C] or [N, C, H, W] input (as
// torch.nn.BatchNorm1d / BatchNorm2d), per channel, with xhat = (x - m) / sqrt(v + eps):
//   y = xhat * weight + bias                       (weight, bias optional, together)
//   training:  m, v = the batch's mean and biased variance over N (and H, W), n elements;
//              dL/dx = weight / sqrt(v + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))
//   inference: m, v = running_mean, running_var;  dL/dx = dy * weight / sqrt(v + eps)
//   dL/dweight = sum(dy * xhat), dL/dbias = sum(dy), over all axes but C.
// The running mean and variance are state (ValueKind::kState), with no gradient: a training step
// moves them towards the batch's statistics through Gate::AppendStateUpdates, which emits gate
// batch_norm_running: (1 - momentum) * running + momentum * (m, or v * n / (n - 1)), as torch.
//
// float64 runs the reference loops, which accumulate in double; float32 runs
// oneDNN's batch_normalization_forward and _backward (batch_norm_dnnl.cc).
#ifndef BACKFLOW_ENGINE_GATES_BATCH_NORM_H_
#define BACKFLOW_ENGINE_GATES_BATCH_NORM_H_

#include "engine/ir/gate_registry.h"

namespace backflow {

void RegisterBatchNormGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_BATCH_NORM_H_
