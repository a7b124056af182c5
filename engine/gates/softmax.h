// softmax and log_softmax over one axis (attribute axis: int, default -1; negative counts from
// the end), as torch.softmax / torch.log_softmax. dy is dL/dy; sums run over the axis.
//
//   softmax      y = e^(x - max x) / sum e^(x - max x)   dL/dx = y * (dy - sum(dy * y))
//   log_softmax  y = x - max x - ln sum e^(x - max x)    dL/dx = dy - e^y * sum(dy)
//
// float32 runs on oneDNN's softmax primitives (softmax_dnnl.h) where the axis is innermost, else
// on the reference loops, as float64 always does (float32 sums accumulate in double there, Note
// [Float32 sums accumulate in double]). The gradients are the internal gates
// "softmax_grad" and "log_softmax_grad", inputs (y, dy): they read the forward output, not x.
#ifndef BACKFLOW_ENGINE_GATES_SOFTMAX_H_
#define BACKFLOW_ENGINE_GATES_SOFTMAX_H_

namespace backflow {

class GateRegistry;
void RegisterSoftmaxGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_SOFTMAX_H_
