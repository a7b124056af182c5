// Loss gates: each reduces its inputs to one scalar L (shape []). dy is dL/d(loss) from above,
// a scalar; every gradient below is multiplied by it.
//
//   squared_error          inputs y, t (one shape); attribute reduction (string: "sum", default,
//                          or "mean")
//                          L = 1/2 sum (y - t)^2 / D            dL/dy = (y - t) / D
//                                                               dL/dt = -(y - t) / D
//                          D = 1 for "sum". For "mean", D is the batch size, dimension 0 of y
//                          (1 for a scalar): the mean over examples of each example's
//                          1/2 ||y_i - t_i||^2, as in the seeds' L = 1/2 ||y - y*||^2, rather
//                          than a mean over every element.
//   softmax_cross_entropy  inputs logits [N, C], labels [N]
//                          L = 1/N sum_i -log softmax(x_i)[y_i]
//                            = 1/N sum_i (log sum_j e^(x_ij - m_i)) - (x_iy_i - m_i),
//                          m_i = max_j x_ij, so no exp() sees a positive argument
//                                                               dL/dx_ij = (p_ij - 1[j = y_i]) / N
//                          p = softmax(x), recomputed from the logits by the backward gate
//   svm_hinge              inputs scores [N, C], labels [N]; attribute margin (float, 1)
//                          L = 1/N sum_i sum_{j != y_i} max(0, s_ij - s_iy_i + margin)
//                                                 dL/ds_ij = 1[s_ij - s_iy_i + margin > 0] / N
//                                                 dL/ds_iy_i = -(number of such j) / N
//   sigmoid_cross_entropy  inputs logits x, targets t in [0, 1] (one shape); K = element count
//                          L = 1/K sum max(x, 0) - x t + log(1 + e^-|x|)
//                                                               dL/dx = (sigmoid(x) - t) / K
//                                                               dL/dt = -x / K
//   accuracy               inputs logits [N, C], labels [N]
//                          L = fraction of rows whose first arg-max is the label; no gradient
//
// Labels are class ids: int32 or int64 tensors, or floats of the plan's dtype. A label that is
// not an integer in [0, C) fails the run with InvalidArgument naming the node ("label 3.5 at
// index 2 is not a class id in [0, 10)"; "label -1 ..." for an int), as does a target of
// sigmoid_cross_entropy outside [0, 1]. Labels have no gradient: asking for one is an error
// naming the node. An empty batch (N = 0) gives L = 0 and zero gradients rather than 0/0.
// Sums run serially in row-major order and accumulate in double, float32 inputs too (Note
// [Float32 sums accumulate in double] in engine/gates/accumulate.h), so results are reproducible.
//
// Gradients come from internal gates "<op>_grad" (inputs: the two forward inputs and dy;
// attributes: the forward node's plus "wrt", the input differentiated).
//
// loss.cc holds squared_error and sigmoid_cross_entropy, loss_class.cc the losses over class
// scores, and loss_internal.h the gate templates they share.
#ifndef BACKFLOW_ENGINE_GATES_LOSS_H_
#define BACKFLOW_ENGINE_GATES_LOSS_H_

#include <cstdint>

namespace backflow {

// The cost model's FLOPs per element of a loss's first input (Gate::Flops): each loss does a
// handful of exp/log/compare/add steps per element, and 5 is the conventional stand-in for that.
inline constexpr int64_t kLossFlopsPerElement = 5;

class GateRegistry;
void RegisterLossGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_LOSS_H_
