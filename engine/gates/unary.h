// Unary elementwise gates. dy is dL/dy; every gradient has x's shape.
//
//   neg         y = -x                           dL/dx = -dy
//   exp         y = e^x                          dL/dx = dy * y
//   log         y = ln(x)                        dL/dx = dy / x
//   reciprocal  y = 1 / x                        dL/dx = -dy * y^2
//   add_scalar  y = c + x        (c: float, 0)   dL/dx = dy
//   mul_scalar  y = a * x        (a: float, 1)   dL/dx = a * dy
//   square      y = x^2                          dL/dx = dy * 2x
//   sqrt        y = sqrt(x)                      dL/dx = dy * 0.5 / y
//   sigmoid     y = 1 / (1 + e^-x)               dL/dx = dy * y * (1 - y)
//   tanh        y = tanh(x)                      dL/dx = dy * (1 - y^2)
//   erf         y = erf(x)                       dL/dx = dy * 2/sqrt(pi) * e^(-x^2)
//   relu        y = max(x, 0)                    dL/dx = dy * 1(x > 0)
//   leaky_relu  y = x > 0 ? x : alpha * x        dL/dx = dy * (x > 0 ? 1 : alpha)
//               (alpha: float, 0.01)
//
// Gates whose derivative is not a constant have an internal "<op>_grad" gate with inputs
// (x, y, dy) and the forward node's attributes; neg and mul_scalar differentiate to themselves
// applied to dy, and add_scalar passes dy through.
#ifndef BACKFLOW_ENGINE_GATES_UNARY_H_
#define BACKFLOW_ENGINE_GATES_UNARY_H_

namespace backflow {

class GateRegistry;
void RegisterUnaryGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_UNARY_H_
