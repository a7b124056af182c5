// Binary elementwise gates with NumPy broadcasting.
//
//   add  y = a + b        dL/da = dy,                 dL/db = dy
//   sub  y = a - b        dL/da = dy,                 dL/db = -dy
//   mul  y = a * b        dL/da = dy * b,             dL/db = dy * a
//   div  y = a / b        dL/da = dy / b,             dL/db = -dy * a / b^2
//   max  y = max(a, b)    dL/da = dy * 1(a >= b),     dL/db = dy * 1(b > a)   (ties go to a)
//   min  y = min(a, b)    dL/da = dy * 1(a <= b),     dL/db = dy * 1(b < a)
//   pow  y = a ^ b        dL/da = dy * b * a^(b-1),   dL/db = dy * log(a) * y (a > 0)
//
// Where an input was broadcast, its gradient is summed back to its shape (reduce_like).
#ifndef BACKFLOW_ENGINE_GATES_BINARY_H_
#define BACKFLOW_ENGINE_GATES_BINARY_H_

namespace backflow {

class GateRegistry;
void RegisterBinaryGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_BINARY_H_
