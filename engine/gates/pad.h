// pad: x surrounded by a constant, or cropped (ONNX Pad, mode "constant", with its pads given as
// an attribute).
//
//   y[i] = x[i - begin] where 0 <= i[d] - begin[d] < x.dim(d) on every axis d, else value
//   dL/dx = the part of dy that x was copied into, 0 for elements of x cropped away
//         = pad(dy, -pads, value 0)
//
// Attributes:
//   pads   ints, required: [begin_0, ..., begin_(r-1), end_0, ..., end_(r-1)], 2r entries (ONNX's
//          order); y.dim(d) = x.dim(d) + begin_d + end_d. A negative entry removes that many
//          elements from its side, at most the axis size, and y.dim(d) must not be negative.
//   value  float, default 0: what the added elements hold.
//
// The open batch dimension cannot be padded: its pads must be 0 (anything else is an error,
// "cannot pad the open batch dimension"), and then it stays open.
//
// The backward is pad itself, with the pads negated: cropping what was added and adding zeros
// where x was cropped, which the rule above always allows.
#ifndef BACKFLOW_ENGINE_GATES_PAD_H_
#define BACKFLOW_ENGINE_GATES_PAD_H_

namespace backflow {

class GateRegistry;
void RegisterPadGates(GateRegistry& registry);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_PAD_H_
