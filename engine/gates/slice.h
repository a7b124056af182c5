// slice: a strided box of x (ONNX Slice, opset 13, with its inputs given as attributes).
//
//   y[i] = x[j] with j[axes[k]] = start_k + i[axes[k]] * steps[k] on the sliced axes and
//          j[d] = i[d] on the others
//   dL/dx = dy scattered into zeros at the positions y was read from   (internal gate slice_grad)
//
// Attributes (ints; one entry per sliced axis, all lists of one length):
//   starts  required; the first index taken on each axis.
//   ends    required; the index each axis stops before (after, for a negative step).
//   axes    the axes the entries apply to, in [-r, r-1], negative counting from the end, no axis
//           twice; absent or empty: 0, 1, ..., len(starts) - 1.
//   steps   nonzero; a negative step walks the axis backwards; absent or empty: all 1.
//
// Starts and ends follow ONNX exactly: a negative value has the axis size added once, then for a
// positive step start and end are clamped to [0, dim], for a negative step start to [0, dim-1]
// and end to [-1, dim-1]. Out-of-range values, such as the INT64_MAX and INT64_MIN exporters
// write for "to the end", are thus clamped, never errors. The axis keeps
// max(0, ceil((end - start) / step)) elements. This is Python's slicing except in one corner: a
// start below -dim with a negative step, which Python (and ONNX's NumPy reference) clamps to
// "before 0", giving nothing, and the spec (and onnxruntime, and this gate) to 0.
//
// An axis holding the open batch dimension may only be taken whole: start 0, step 1 and an end
// of at least INT32_MAX (2147483647; INT64_MAX is what torch writes), which every batch size
// clamps to the full axis. Anything else is an error ("cannot slice the open batch dimension"),
// as its size would depend on the batch.
//
// slice_grad (internal; inputs dy, x; slice's attributes) is dy written into a tensor of x's
// shape, zero elsewhere. It takes x only for its shape, concrete when a plan is compiled.
#ifndef BACKFLOW_ENGINE_GATES_SLICE_H_
#define BACKFLOW_ENGINE_GATES_SLICE_H_

namespace backflow {

class GateRegistry;
void RegisterSliceGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_SLICE_H_
