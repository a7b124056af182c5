// Reductions over a set of axes. dy is dL/dy; the gradient has x's shape.
//
//   sum   y = sum of x over `axes`                  dL/dx = dy broadcast back over `axes`
//   mean  y = sum of x over `axes` / count           dL/dx = dy broadcast back over `axes` / count
//
// Attributes: "axes" (ints; absent or empty: every axis; negative axes count from the end) and
// "keepdims" (int 0 or 1, default 0: reduced axes are dropped; 1: kept with size 1). `count` is
// the number of elements reduced into each output element. Reducing the open batch dimension is
// allowed. Summation runs serially in row-major order of x and accumulates in double (float32
// too: Note [Float32 sums accumulate in double] in engine/gates/accumulate.h), rounding to x's
// dtype once, so a result is bitwise reproducible from run to run.
//
// The backward is the internal gate "expand_like" (inputs dy, x; attributes the normalised axes,
// keepdims, and "mean" = 1 to divide by count).
#ifndef BACKFLOW_ENGINE_GATES_REDUCE_H_
#define BACKFLOW_ENGINE_GATES_REDUCE_H_

namespace backflow {

class GateRegistry;
void RegisterReduceGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_REDUCE_H_
