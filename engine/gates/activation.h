// Activation gates beyond the plain unary table (engine/gates/unary.h). dy is dL/dy.
//
//   gelu  (approximate: string, "none")
//     "none":  y = 0.5 x (1 + erf(x / sqrt(2)))
//              dL/dx = dy * (0.5 (1 + erf(x / sqrt(2))) + x e^(-x^2/2) / sqrt(2 pi))
//     "tanh":  u = sqrt(2/pi) (x + 0.044715 x^3), y = 0.5 x (1 + tanh(u))
//              dL/dx = dy * (0.5 (1 + tanh(u))
//                            + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))
//     as torch.nn.functional.gelu. float32 runs on oneDNN's eltwise_gelu_erf / eltwise_gelu_tanh
//     (forward and backward) where UseDnnlEltwise allows, else on the reference loops.
//
// The gradient is the internal gate "gelu_grad", inputs (x, y, dy), the forward node's attributes.
#ifndef BACKFLOW_ENGINE_GATES_ACTIVATION_H_
#define BACKFLOW_ENGINE_GATES_ACTIVATION_H_

namespace backflow {

class GateRegistry;
void RegisterActivationGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_ACTIVATION_H_
