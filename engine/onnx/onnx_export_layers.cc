// The ONNX forms of the layers: convolution, normalisation, pooling, matrix products and
// embeddings.
#include <numeric>
#include <string>
#include <vector>

#include "engine/onnx/onnx_export_internal.h"

namespace backflow::onnx_export {
namespace {

// backflow's padding, [ph, pw] or [pt, pl, pb, pr], as ONNX pads [pt, pl, pb, pr] (ONNX orders
// pads as all begins, then all ends: for H and W, top, left, bottom, right).
std::vector<int64_t> OnnxPads(const Attributes& attrs) {
  std::vector<int64_t> p = attrs.GetInts("padding", {0, 0});
  if (p.size() == 2) return {p[0], p[1], p[0], p[1]};
  return p;
}

Status EmitConv2d(NodeWriter& w) {
  std::vector<std::string> inputs = {w.input(0), w.input(1)};
  if (w.num_inputs() == 3) inputs.push_back(w.input(2));
  onnx::NodeProto& conv = w.Add("Conv", std::move(inputs), w.output());
  const Shape& weight = w.input_value(1).shape;
  SetInts(conv, "dilations", w.attrs().GetInts("dilation", {1, 1}));
  SetInt(conv, "group", w.attrs().GetInt("groups", 1));
  SetInts(conv, "kernel_shape", std::vector<int64_t>{weight.dim(2), weight.dim(3)});
  SetInts(conv, "pads", OnnxPads(w.attrs()));
  SetInts(conv, "strides", w.attrs().GetInts("stride", {1, 1}));
  return Status::Ok();
}

// ONNX's momentum weighs the running statistic, backflow's the batch's: theirs is 1 - ours.
// Without weight and bias, the scale and shift are Constants of ones and zeros.
Status EmitBatchNorm(NodeWriter& w) {
  const Shape channels{w.input_value(1).shape.dim(0)};
  const std::string scale = w.num_inputs() > 3 ? w.input(3) : w.Filled("scale", channels, 1.0);
  const std::string bias = w.num_inputs() > 4 ? w.input(4) : w.Filled("bias", channels, 0.0);
  onnx::NodeProto& bn =
      w.Add("BatchNormalization", {w.input(0), scale, bias, w.input(1), w.input(2)}, w.output());
  SetFloat(bn, "epsilon", w.attrs().GetFloat("epsilon", 1e-5));
  SetFloat(bn, "momentum", 1.0 - w.attrs().GetFloat("momentum", 0.1));
  return Status::Ok();
}

// Note [ceil_mode]: backflow's ceil_mode is PyTorch's, which drops a last window that would
// start past x and its top/left padding; opset 14's output size (and onnx 1.12's shape
// inference) keeps it. Where that rule removed the window that rounding up added, rounding down
// gives the same windows, so ceil_mode 0 is written. (Where it removed one in one dimension
// while rounding up added one in the other, no opset-14 ceil_mode says both: 1 is written, with
// PyTorch's output shape, which onnx 1.12's strict shape inference then disputes.)
int64_t OnnxCeilMode(const NodeWriter& w, const std::vector<int64_t>& kernel,
                     const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                     const std::vector<int64_t>& pads) {
  if (w.attrs().GetInt("ceil_mode", 0) == 0) return 0;
  const Shape& x = w.input_value(0).shape;
  const Shape& y = w.output_value().shape;
  bool ceil_fits = true;
  bool floor_fits = true;
  for (int d = 0; d < 2; ++d) {
    const int64_t span = x.dim(2 + d) + pads[d] + pads[d + 2] - (kernel[d] - 1) * dilations[d] - 1;
    const int64_t s = strides[d];
    ceil_fits = ceil_fits && (span + s - 1) / s + 1 == y.dim(2 + d);
    floor_fits = floor_fits && span / s + 1 == y.dim(2 + d);
  }
  return ceil_fits || !floor_fits ? 1 : 0;
}

// The attributes MaxPool and AveragePool share; strides default to the kernel.
void SetPoolWindow(const NodeWriter& w, const std::vector<int64_t>& dilations,
                   onnx::NodeProto& pool) {
  const std::vector<int64_t> kernel = w.attrs().GetInts("kernel");
  const std::vector<int64_t> strides = w.attrs().GetInts("stride", kernel);
  const std::vector<int64_t> pads = OnnxPads(w.attrs());
  SetInt(pool, "ceil_mode", OnnxCeilMode(w, kernel, strides, dilations, pads));
  SetInts(pool, "kernel_shape", kernel);
  SetInts(pool, "pads", pads);
  SetInts(pool, "strides", strides);
}

Status EmitMaxPool(NodeWriter& w) {
  onnx::NodeProto& pool = w.Add("MaxPool", {w.input(0)}, w.output());
  const std::vector<int64_t> dilations = w.attrs().GetInts("dilation", {1, 1});
  SetPoolWindow(w, dilations, pool);
  SetInts(pool, "dilations", dilations);
  return Status::Ok();
}

Status EmitAvgPool(NodeWriter& w) {
  onnx::NodeProto& pool = w.Add("AveragePool", {w.input(0)}, w.output());
  SetPoolWindow(w, {1, 1}, pool);
  SetInt(pool, "count_include_pad", w.attrs().GetInt("count_include_pad", 1));
  return Status::Ok();
}

Status EmitGlobalAvgPool(NodeWriter& w) {
  w.Add("GlobalAveragePool", {w.input(0)}, w.output());
  return Status::Ok();
}

void SetGemmFlags(onnx::NodeProto& gemm, int64_t trans_a, int64_t trans_b) {
  SetFloat(gemm, "alpha", 1.0);
  SetFloat(gemm, "beta", 1.0);
  SetInt(gemm, "transA", trans_a);
  SetInt(gemm, "transB", trans_b);
}

// Rank 2: Gemm(x, w[, b]). Higher ranks: MatMul(x, w)[, then Add(., b)], as Gemm takes
// matrices only.
Status EmitLinear(NodeWriter& w) {
  const bool has_bias = w.num_inputs() == 3;
  if (w.input_value(0).shape.rank() == 2) {
    std::vector<std::string> inputs = {w.input(0), w.input(1)};
    if (has_bias) inputs.push_back(w.input(2));
    SetGemmFlags(w.Add("Gemm", std::move(inputs), w.output()), 0, 0);
    return Status::Ok();
  }
  const std::string product = has_bias ? w.Temp("matmul") : w.output();
  w.Add("MatMul", {w.input(0), w.input(1)}, product);
  if (has_bias) w.Add("Add", {product, w.input(2)}, w.output());
  return Status::Ok();
}

// x with its last two dimensions swapped, as "NODE.suffix".
std::string SwapLastTwo(NodeWriter& w, int input, std::string_view suffix) {
  const int rank = w.input_value(input).shape.rank();
  std::vector<int64_t> perm(static_cast<size_t>(rank));
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[static_cast<size_t>(rank - 2)], perm[static_cast<size_t>(rank - 1)]);
  const std::string swapped = w.Temp(suffix);
  SetInts(w.Add("Transpose", {w.input(input)}, swapped), "perm", perm);
  return swapped;
}

// Both rank 2: Gemm(a, b) with the flags (no C). Otherwise MatMul, after a Transpose of each
// operand whose flag is set.
Status EmitMatMul(NodeWriter& w) {
  const int64_t ta = w.attrs().GetInt("transpose_a", 0);
  const int64_t tb = w.attrs().GetInt("transpose_b", 0);
  if (w.input_value(0).shape.rank() == 2 && w.input_value(1).shape.rank() == 2) {
    SetGemmFlags(w.Add("Gemm", {w.input(0), w.input(1)}, w.output()), ta, tb);
    return Status::Ok();
  }
  const std::string a = ta == 1 ? SwapLastTwo(w, 0, "a_t") : w.input(0);
  const std::string b = tb == 1 ? SwapLastTwo(w, 1, "b_t") : w.input(1);
  w.Add("MatMul", {a, b}, w.output());
  return Status::Ok();
}

// Note [Layer norm in opset 14]: opset 14 has no LayerNormalization (it came in 17), so
// layer_norm is written as torch.onnx.export (1.13) writes it, over axes [-k, ..., -1]:
//   mean = ReduceMean(x), d = Sub(x, mean), var = ReduceMean(Pow(d, 2)),
//   y = Div(d, Sqrt(Add(var, epsilon))) [-> Mul(., weight)] [-> Add(., bias)]
// (both ReduceMeans keepdims 1; 2 and epsilon scalar initializers of the model's dtype).
Status EmitLayerNorm(NodeWriter& w) {
  const bool has_weight = w.num_inputs() > 1;
  const bool has_bias = w.num_inputs() > 2;
  const int64_t k =
      has_weight ? w.input_value(1).shape.rank() : w.attrs().GetInt("normalized_ndim", 1);
  std::vector<int64_t> axes;
  for (int64_t a = -k; a < 0; ++a) axes.push_back(a);
  const std::string mean = w.Temp("mean");
  onnx::NodeProto& reduce_mean = w.Add("ReduceMean", {w.input(0)}, mean);
  SetInts(reduce_mean, "axes", axes);
  SetInt(reduce_mean, "keepdims", 1);
  const std::string centered = w.Temp("centered");
  w.Add("Sub", {w.input(0), mean}, centered);
  const std::string square = w.Temp("square");
  w.Add("Pow", {centered, w.Scalar("two", 2.0)}, square);
  const std::string var = w.Temp("var");
  onnx::NodeProto& reduce_var = w.Add("ReduceMean", {square}, var);
  SetInts(reduce_var, "axes", axes);
  SetInt(reduce_var, "keepdims", 1);
  const std::string var_eps = w.Temp("var_eps");
  w.Add("Add", {var, w.Scalar("epsilon", w.attrs().GetFloat("epsilon", 1e-5))}, var_eps);
  const std::string stddev = w.Temp("std");
  w.Add("Sqrt", {var_eps}, stddev);
  const std::string normalized = has_weight ? w.Temp("normalized") : w.output();
  w.Add("Div", {centered, stddev}, normalized);
  if (!has_weight) return Status::Ok();
  const std::string scaled = has_bias ? w.Temp("scaled") : w.output();
  w.Add("Mul", {normalized, w.input(1)}, scaled);
  if (has_bias) w.Add("Add", {scaled, w.input(2)}, w.output());
  return Status::Ok();
}

// padding_idx only withholds a gradient, so the gather is all there is of it at inference.
Status EmitEmbedding(NodeWriter& w) {
  SetInt(w.Add("Gather", {w.input(0), w.input(1)}, w.output()), "axis", 0);
  return Status::Ok();
}

}  // namespace

void AddLayerEmitters(EmitterTable& table) {
  table.emplace("conv2d", &EmitConv2d);
  table.emplace("batch_norm", &EmitBatchNorm);
  table.emplace("max_pool2d", &EmitMaxPool);
  table.emplace("avg_pool2d", &EmitAvgPool);
  table.emplace("global_avg_pool2d", &EmitGlobalAvgPool);
  table.emplace("linear", &EmitLinear);
  table.emplace("matmul", &EmitMatMul);
  table.emplace("layer_norm", &EmitLayerNorm);
  table.emplace("embedding", &EmitEmbedding);
}

}  // namespace backflow::onnx_export
