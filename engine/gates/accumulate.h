// Accumulator: the type every sum in the gates accumulates in.
//
// Note [Float32 sums accumulate in double]
// A float32 sum of a million terms accumulated in float32 drifts: every addition rounds to 24
// bits, and the rounding grows with the running total (the mean of squared errors over
// 1000 x 1000 elements came out 5e-4 off, relative). So every reduction of the gates (sum, mean,
// reduce_like's broadcast gradients, the losses) accumulates in double and rounds to the tensor's
// dtype once, at the end: within 1e-6 relative of float64 at the sizes a batch has, as PyTorch's
// float32 is (tests/engine/gates/float32_sums_test.cc). Float64 runs accumulate in double as
// before, in the same order, so their results are bitwise what they were. Sums stay serial, in
// row-major order, so results are reproducible.
#ifndef BACKFLOW_ENGINE_GATES_ACCUMULATE_H_
#define BACKFLOW_ENGINE_GATES_ACCUMULATE_H_

namespace backflow {

using Accumulator = double;

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_ACCUMULATE_H_
