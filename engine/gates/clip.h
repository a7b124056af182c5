// clip: y = min(max(x, min), max), as torch.clamp. Attributes min and max (float; each optional,
// default -inf and +inf, at least one finite; min <= max). dy is dL/dy.
//
//   dL/dx = dy where min <= x <= max, else 0
//
// The bounds themselves pass the gradient, as torch.clamp's backward does (checked with torch
// 1.13: clamp(x, -1, 1) on x = -2, -1, 0, 0.5, 1, 3 gives gradient 0, 1, 1, 1, 1, 0).
// The gradient is the internal gate "clip_grad", inputs (x, dy), the forward node's attributes.
#ifndef BACKFLOW_ENGINE_GATES_CLIP_H_
#define BACKFLOW_ENGINE_GATES_CLIP_H_

namespace backflow {

class GateRegistry;
void RegisterClipGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_CLIP_H_
