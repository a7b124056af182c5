// Convolution, batch normalisation, pooling, padding, dropout and softmax.
#include <optional>
#include <string>

#include "engine/core/checked.h"
#include "engine/onnx/onnx_known.h"
#include "engine/onnx/onnx_ops.h"

namespace backflow::onnx_import {
namespace {

// The spatial window settings shared by Conv, MaxPool and AveragePool.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: [top, left, bottom, right]
};

// What SAME padding's windows cover on an axis of `in` > 0 elements: (out - 1) * stride + span,
// out = ceil(in / stride); nullopt where that overflows int64.
std::optional<int64_t> SamePadExtent(int64_t in, int64_t stride, int64_t kernel, int64_t dilation) {
  const int64_t out = in / stride + (in % stride != 0 ? 1 : 0);
  const std::optional<int64_t> taps = CheckedSub(kernel, 1);
  const std::optional<int64_t> gaps = taps ? CheckedMul(*taps, dilation) : std::nullopt;
  const std::optional<int64_t> span = gaps ? CheckedAdd(*gaps, 1) : std::nullopt;
  const std::optional<int64_t> starts = CheckedMul(out - 1, stride);
  return span && starts ? CheckedAdd(*starts, *span) : std::nullopt;
}

StatusOr<Window> ReadWindow(const NodeContext& ctx, const Shape& x, std::vector<int64_t> kernel) {
  if (x.rank() != 4) {
    return ctx.Error("input has shape " + x.ToString() + "; backflow supports the 2-D form "
                     "(4-D [N, C, H, W] inputs) only");
  }
  Window w;
  BF_ASSIGN_OR_RETURN(w.kernel, ctx.Ints("kernel_shape", kernel));
  if (w.kernel.size() != 2) return ctx.Error("kernel_shape must have 2 values");
  BF_ASSIGN_OR_RETURN(w.strides, ctx.Ints("strides", {1, 1}));
  BF_ASSIGN_OR_RETURN(w.dilations, ctx.Ints("dilations", {1, 1}));
  BF_ASSIGN_OR_RETURN(w.pads, ctx.Ints("pads", {0, 0, 0, 0}));
  if (w.strides.size() != 2 || w.dilations.size() != 2 || w.pads.size() != 4) {
    return ctx.Error("strides and dilations need 2 values, pads 4");
  }
  BF_ASSIGN_OR_RETURN(std::string auto_pad, ctx.String("auto_pad", "NOTSET"));
  if (auto_pad == "VALID") {
    w.pads = {0, 0, 0, 0};
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (int i = 0; i < 2; ++i) {
      const int64_t in = x.dim(2 + i), s = w.strides[static_cast<size_t>(i)];
      if (s <= 0) return ctx.Error("strides must be positive");
      const std::optional<int64_t> extent = SamePadExtent(in, s, w.kernel[static_cast<size_t>(i)],
                                                          w.dilations[static_cast<size_t>(i)]);
      if (!extent) return ctx.Error("strides, kernel_shape and dilations overflow the window size");
      const int64_t total = std::max<int64_t>(*extent - in, 0);
      const int64_t small = total / 2, large = total - small;
      w.pads[static_cast<size_t>(i)] = auto_pad == "SAME_UPPER" ? small : large;
      w.pads[static_cast<size_t>(i + 2)] = auto_pad == "SAME_UPPER" ? large : small;
    }
  } else if (auto_pad != "NOTSET") {
    return ctx.Error("auto_pad '" + auto_pad + "' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  }
  return w;
}

// The input as a tensor, taking over a zero Pad that only this node reads when `absorb` allows
// (its pads are added to `pads`).
StatusOr<std::string> SpatialInput(const NodeContext& ctx, bool absorb, std::vector<int64_t>& pads,
                                   bool* absorbed) {
  BF_ASSIGN_OR_RETURN(Entry * entry, ctx.input(0));
  *absorbed = false;
  if (absorb && entry->pending_pad && entry->tensor.empty()) {
    const auto& [source, extra] = *entry->pending_pad;
    for (size_t i = 0; i < 4; ++i) {
      const std::optional<int64_t> sum = CheckedAdd(pads[i], extra[i]);
      if (!sum) return ctx.Error("pads with the Pad before it overflow int64");
      pads[i] = *sum;
    }
    *absorbed = true;
    return source;
  }
  return ctx.Tensor(0);
}

StatusOr<Shape> ShapeOfInput(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Entry * entry, ctx.input(0));
  std::string tensor = entry->pending_pad && entry->tensor.empty() ? entry->pending_pad->first
                                                                   : std::string();
  if (tensor.empty()) {
    BF_ASSIGN_OR_RETURN(tensor, ctx.Tensor(0));
  }
  BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(tensor));
  return shapes.first;
}

}  // namespace

Status ConvOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Shape x_shape, ShapeOfInput(ctx));
  BF_ASSIGN_OR_RETURN(std::string w, ctx.Tensor(1));
  BF_ASSIGN_OR_RETURN(auto w_shapes, ctx.Shapes(w));
  const Shape& ws = w_shapes.first;
  if (ws.rank() != 4) return ctx.Error("W has shape " + ws.ToString() + "; expected 4-D");
  BF_ASSIGN_OR_RETURN(Window win, ReadWindow(ctx, x_shape, {ws.dim(2), ws.dim(3)}));
  if (win.kernel != std::vector<int64_t>{ws.dim(2), ws.dim(3)}) {
    return ctx.Error("kernel_shape disagrees with W's shape " + ws.ToString());
  }
  BF_ASSIGN_OR_RETURN(int64_t group, ctx.Int("group", 1));
  bool absorbed = false;
  BF_ASSIGN_OR_RETURN(std::string x, SpatialInput(ctx, true, win.pads, &absorbed));
  std::vector<std::string> inputs = {x, w};
  if (ctx.has_input(2)) {
    BF_ASSIGN_OR_RETURN(std::string b, ctx.Tensor(2));
    inputs.push_back(b);
  }
  AttrMap attrs;
  attrs["stride"] = IntsAttr(win.strides);
  attrs["dilation"] = IntsAttr(win.dilations);
  attrs["padding"] = IntsAttr(win.pads);
  attrs["groups"] = IntAttr(group);
  return ctx.Emit(0, "", "conv2d", inputs, attrs).status();
}

Status BatchNormOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(double epsilon, ctx.Float("epsilon", 1e-5));
  BF_ASSIGN_OR_RETURN(double momentum, ctx.Float("momentum", 0.9));
  BF_RETURN_IF_ERROR(ctx.RequireUnused(1, "the running mean output"));
  BF_RETURN_IF_ERROR(ctx.RequireUnused(2, "the running variance output"));
  for (int i : {3, 4}) {
    BF_ASSIGN_OR_RETURN(Entry * entry, ctx.input(i));
    if (entry->initializer == nullptr) {
      return ctx.Error(std::string(i == 3 ? "the mean" : "the variance") +
                       " must be an initializer of its own (it becomes running state)");
    }
    ctx.translator().MarkState(ctx.node().input(i));
  }
  std::vector<std::string> inputs;
  for (int i : {0, 3, 4, 1, 2}) {
    BF_ASSIGN_OR_RETURN(std::string t, ctx.Tensor(i));
    inputs.push_back(t);
  }
  AttrMap attrs;
  attrs["epsilon"] = FloatAttr(epsilon);
  attrs["momentum"] = FloatAttr(1.0 - momentum);  // ONNX weighs the old running value
  return ctx.Emit(0, "", "batch_norm", inputs, attrs).status();
}

Status MaxPoolOp(const NodeContext& ctx) {
  BF_RETURN_IF_ERROR(ctx.RequireUnused(1, "the Indices output"));
  BF_ASSIGN_OR_RETURN(int64_t storage, ctx.Int("storage_order", 0));
  if (storage != 0) return ctx.Error("storage_order 1 (column major) is not supported");
  BF_ASSIGN_OR_RETURN(Shape x_shape, ShapeOfInput(ctx));
  BF_ASSIGN_OR_RETURN(Window win, ReadWindow(ctx, x_shape, {}));
  BF_ASSIGN_OR_RETURN(int64_t ceil_mode, ctx.Int("ceil_mode", 0));
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  AttrMap attrs;
  attrs["kernel"] = IntsAttr(win.kernel);
  attrs["stride"] = IntsAttr(win.strides);
  attrs["dilation"] = IntsAttr(win.dilations);
  attrs["padding"] = IntsAttr(win.pads);
  attrs["ceil_mode"] = IntAttr(ceil_mode);
  return ctx.Emit(0, "", "max_pool2d", {x}, attrs).status();
}

// torch writes F.avg_pool2d(x, k, padding=p) as Pad(p) then AveragePool with no pads: in floor
// mode every window lies inside the padded tensor, which is avg_pool2d with padding p and
// count_include_pad 1.
Status AveragePoolOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(Shape x_shape, ShapeOfInput(ctx));
  BF_ASSIGN_OR_RETURN(Window win, ReadWindow(ctx, x_shape, {}));
  if (win.dilations != std::vector<int64_t>{1, 1}) return ctx.Error("dilations are not supported");
  BF_ASSIGN_OR_RETURN(int64_t ceil_mode, ctx.Int("ceil_mode", 0));
  BF_ASSIGN_OR_RETURN(int64_t include_pad, ctx.Int("count_include_pad", 0));
  const bool no_pads = win.pads == std::vector<int64_t>{0, 0, 0, 0};
  bool absorbed = false;
  BF_ASSIGN_OR_RETURN(std::string x, SpatialInput(ctx, no_pads && ceil_mode == 0, win.pads, &absorbed));
  for (size_t i = 0; absorbed && i < 4; ++i) {
    if (win.pads[i] >= win.kernel[i % 2]) {  // backflow pads less than a window
      win.pads = {0, 0, 0, 0};
      absorbed = false;
      BF_ASSIGN_OR_RETURN(x, ctx.Tensor(0));
    }
  }
  AttrMap attrs;
  attrs["kernel"] = IntsAttr(win.kernel);
  attrs["stride"] = IntsAttr(win.strides);
  attrs["padding"] = IntsAttr(win.pads);
  attrs["ceil_mode"] = IntAttr(ceil_mode);
  attrs["count_include_pad"] = IntAttr(absorbed ? 1 : include_pad);
  return ctx.Emit(0, "", "avg_pool2d", {x}, attrs).status();
}

Status GlobalAveragePoolOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  return ctx.Emit(0, "", "global_avg_pool2d", {x}).status();
}

Status PadOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(std::string mode, ctx.String("mode", "constant"));
  if (mode != "constant") return ctx.Error("mode '" + mode + "' is not supported (constant is)");
  std::vector<int64_t> pads;
  double value = 0.0;
  if (ctx.opset() >= 11) {
    BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(1, "pads"));
    BF_ASSIGN_OR_RETURN(pads, StaticInts(ctx, k, "pads"));
    if (ctx.has_input(2)) {
      BF_ASSIGN_OR_RETURN(Known v, ctx.KnownInput(2, "constant_value"));
      BF_ASSIGN_OR_RETURN(value, ScalarFloat(ctx, v, "constant_value"));
    }
  } else {
    BF_ASSIGN_OR_RETURN(pads, ctx.Ints("pads", {}));
    BF_ASSIGN_OR_RETURN(value, ctx.Float("value", 0.0));
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(x));
  const int rank = shapes.first.rank();
  if (static_cast<int>(pads.size()) != 2 * rank) {
    return ctx.Error("pads has " + std::to_string(pads.size()) + " values; the input has rank " +
                     std::to_string(rank) + ", so it needs " + std::to_string(2 * rank));
  }
  bool zero = true, spatial_only = rank == 4 && value == 0.0;
  for (int i = 0; i < 2 * rank; ++i) {
    const int64_t p = pads[static_cast<size_t>(i)];
    zero = zero && p == 0;
    spatial_only = spatial_only && p >= 0 && (i % rank >= 2 || p == 0);
  }
  if (zero) {
    ctx.Alias(0, x);
    return Status::Ok();
  }
  if (spatial_only && ctx.translator().uses(ctx.node().output(0)) == 1) {
    ctx.SetPendingPad(0, x, {pads[2], pads[3], pads[6], pads[7]});
    return Status::Ok();
  }
  AttrMap attrs;
  attrs["pads"] = IntsAttr(pads);
  attrs["value"] = FloatAttr(value);
  return ctx.Emit(0, "", "pad", {x}, attrs).status();
}

Status DropoutOp(const NodeContext& ctx) {
  BF_RETURN_IF_ERROR(ctx.RequireUnused(1, "the mask output"));
  double ratio = 0.5;
  if (ctx.opset() >= 12) {
    if (ctx.has_input(1)) {
      BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(1, "ratio"));
      BF_ASSIGN_OR_RETURN(ratio, ScalarFloat(ctx, k, "ratio"));
    }
  } else {
    BF_ASSIGN_OR_RETURN(ratio, ctx.Float("ratio", 0.5));
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  if (ratio == 0.0) {
    ctx.Alias(0, x);
    return Status::Ok();
  }
  AttrMap attrs;
  attrs["p"] = FloatAttr(ratio);
  return ctx.Emit(0, "", "dropout", {x}, attrs).status();
}

Status SoftmaxOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(x));
  const int64_t rank = shapes.first.rank();
  BF_ASSIGN_OR_RETURN(int64_t axis, ctx.Int("axis", ctx.opset() >= 13 ? -1 : 1));
  BF_ASSIGN_OR_RETURN(axis, Axis(ctx, axis, rank, "axis"));
  if (ctx.opset() < 13 && axis != rank - 1) {
    return ctx.Error("before opset 13 Softmax flattens the axes from `axis` on; backflow supports "
                     "it only when axis is the last one");
  }
  AttrMap attrs;
  attrs["axis"] = IntAttr(axis);
  return ctx.Emit(0, "", ctx.op() == "Softmax" ? "softmax" : "log_softmax", {x}, attrs).status();
}

// Clip: bounds from inputs 1 and 2 (opset 11+) or the min/max attributes; an empty input is
// no bound on that side.
Status ClipOp(const NodeContext& ctx) {
  AttrMap attrs;
  if (ctx.opset() >= 11) {
    for (int i : {1, 2}) {
      if (!ctx.has_input(i)) continue;
      BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(i, i == 1 ? "min" : "max"));
      BF_ASSIGN_OR_RETURN(double bound, ScalarFloat(ctx, k, i == 1 ? "min" : "max"));
      attrs[i == 1 ? "min" : "max"] = FloatAttr(bound);
    }
  } else {
    for (const char* name : {"min", "max"}) {
      if (ctx.attr(name) == nullptr) continue;
      BF_ASSIGN_OR_RETURN(double bound, ctx.Float(name, 0.0));
      attrs[name] = FloatAttr(bound);
    }
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  if (attrs.empty()) {  // no bounds: the identity
    ctx.Alias(0, x);
    return Status::Ok();
  }
  return ctx.Emit(0, "", "clip", {x}, attrs).status();
}

}  // namespace backflow::onnx_import
