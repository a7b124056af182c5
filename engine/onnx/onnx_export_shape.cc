// The ONNX forms of the ops that move, join, normalise along or reduce axes: flatten, reshape,
// transpose, concat, slice, pad, softmax, log_softmax, mean and sum.
#include <string>
#include <vector>

#include "engine/onnx/onnx_export_internal.h"

namespace backflow::onnx_export {
namespace {

Status EmitFlatten(NodeWriter& w) {
  SetInt(w.Add("Flatten", {w.input(0)}, w.output()), "axis", w.attrs().GetInt("axis", 1));
  return Status::Ok();
}

// The target as written: its 0s (copy x's dimension) and -1 (inferred) mean in ONNX's Reshape
// (allowzero 0) what they mean in backflow's.
Status EmitReshape(NodeWriter& w) {
  w.Add("Reshape", {w.input(0), w.Int64s("shape", w.attrs().GetInts("shape"))}, w.output());
  return Status::Ok();
}

// The permutation is always written out; backflow's empty one (reverse) becomes explicit.
Status EmitTranspose(NodeWriter& w) {
  std::vector<int64_t> perm = w.attrs().GetInts("perm");
  if (perm.empty()) {
    for (int64_t d = w.input_value(0).shape.rank() - 1; d >= 0; --d) perm.push_back(d);
  }
  SetInts(w.Add("Transpose", {w.input(0)}, w.output()), "perm", perm);
  return Status::Ok();
}

Status EmitConcat(NodeWriter& w) {
  std::vector<std::string> inputs;
  for (int i = 0; i < w.num_inputs(); ++i) inputs.push_back(w.input(i));
  SetInt(w.Add("Concat", std::move(inputs), w.output()), "axis", w.attrs().GetInt("axis", 0));
  return Status::Ok();
}

// starts, ends, axes and steps as int64 initializers, all four always: an absent axes is
// 0, 1, ..., and absent steps are 1s (ONNX's defaults, written out).
Status EmitSlice(NodeWriter& w) {
  const std::vector<int64_t> starts = w.attrs().GetInts("starts");
  std::vector<int64_t> axes = w.attrs().GetInts("axes");
  if (axes.empty()) {
    for (size_t a = 0; a < starts.size(); ++a) axes.push_back(static_cast<int64_t>(a));
  }
  std::vector<int64_t> steps = w.attrs().GetInts("steps");
  if (steps.empty()) steps.assign(starts.size(), 1);
  w.Add("Slice",
        {w.input(0), w.Int64s("starts", starts), w.Int64s("ends", w.attrs().GetInts("ends")),
         w.Int64s("axes", axes), w.Int64s("steps", steps)},
        w.output());
  return Status::Ok();
}

// Pad(x, pads, constant_value): pads in ONNX's order (all begins, then all ends), the value a
// scalar of the model's dtype.
Status EmitPad(NodeWriter& w) {
  const std::string mode = w.attrs().GetString("mode", "constant");
  const std::string value =
      mode == "constant" ? w.Scalar("value", w.attrs().GetFloat("value", 0)) : std::string();
  onnx::NodeProto& pad =
      w.Add("Pad", {w.input(0), w.Int64s("pads", w.attrs().GetInts("pads")), value}, w.output());
  SetString(pad, "mode", mode);
  return Status::Ok();
}

Status EmitSoftmax(NodeWriter& w) {
  const char* type = w.node().op == "softmax" ? "Softmax" : "LogSoftmax";
  SetInt(w.Add(type, {w.input(0)}, w.output()), "axis", w.attrs().GetInt("axis", -1));
  return Status::Ok();
}

// Opset 13 moved ReduceSum's axes to an input but kept ReduceMean's an attribute. Empty axes
// (all of them) leave the axes out, which is ONNX's "all" too.
Status EmitMean(NodeWriter& w) {
  const std::vector<int64_t> axes = w.attrs().GetInts("axes");
  onnx::NodeProto& reduce = w.Add("ReduceMean", {w.input(0)}, w.output());
  if (!axes.empty()) SetInts(reduce, "axes", axes);
  SetInt(reduce, "keepdims", w.attrs().GetInt("keepdims", 0));
  return Status::Ok();
}

Status EmitSum(NodeWriter& w) {
  const std::vector<int64_t> axes = w.attrs().GetInts("axes");
  const std::string axes_input = axes.empty() ? std::string() : w.Int64s("axes", axes);
  SetInt(w.Add("ReduceSum", {w.input(0), axes_input}, w.output()), "keepdims",
         w.attrs().GetInt("keepdims", 0));
  return Status::Ok();
}

}  // namespace

void AddShapeEmitters(EmitterTable& table) {
  table.emplace("flatten", &EmitFlatten);
  table.emplace("reshape", &EmitReshape);
  table.emplace("transpose", &EmitTranspose);
  table.emplace("concat", &EmitConcat);
  table.emplace("slice", &EmitSlice);
  table.emplace("pad", &EmitPad);
  table.emplace("softmax", &EmitSoftmax);
  table.emplace("log_softmax", &EmitSoftmax);
  table.emplace("mean", &EmitMean);
  table.emplace("sum", &EmitSum);
}

}  // namespace backflow::onnx_export
