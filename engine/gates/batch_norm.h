// Batch normalisation over the channel axis 1 of [N, C] or [N, C, H, W] input (as
// torch.nn.BatchNorm1d / BatchNorm2d): in training mode with the batch's statistics, in inference
// mode with the running mean and variance the model keeps as state (ValueKind::kState), which
// each training step moves towards the batch's (Gate::AppendStateUpdates, gate
// batch_norm_running).
#ifndef BACKFLOW_ENGINE_GATES_BATCH_NORM_H_
#define BACKFLOW_ENGINE_GATES_BATCH_NORM_H_

#include "engine/ir/gate_registry.h"

namespace backflow {

void RegisterBatchNormGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_BATCH_NORM_H_
