// A graph that uses every op ExportOnnx maps, each attribute variant once: the ONNX export
// tests check its exact ONNX form and run it against a numpy reference.
#ifndef BACKFLOW_TESTS_ENGINE_ONNX_EVERY_OP_GRAPH_H_
#define BACKFLOW_TESTS_ENGINE_ONNX_EVERY_OP_GRAPH_H_

#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/gates/builtin.h"
#include "engine/ir/graph.h"

namespace backflow::testing {

// Builds a graph whose every node is an output, and the values of its parameters and state.
class Builder {
 public:
  ValueId Placeholder(const std::string& name, Shape shape, DType dtype = DType::kFloat32) {
    return Check(graph.AddPlaceholder(name, std::move(shape), dtype));
  }
  ValueId Parameter(const std::string& name, Shape shape) {
    values.emplace(name, Ramp(shape));
    return Check(graph.AddParameter(name, std::move(shape)));
  }
  ValueId State(const std::string& name, Shape shape) {
    values.emplace(name, Ramp(shape));
    return Check(graph.AddState(name, std::move(shape)));
  }
  ValueId Node(const std::string& name, std::string_view op, std::vector<ValueId> inputs,
               Attributes attrs = {}) {
    const ValueId id = Check(graph.AddNode(name, op, std::move(inputs), std::move(attrs)));
    graph.AddOutput(id);
    return id;
  }

  Graph graph{BuiltinGates()};
  std::unordered_map<std::string, Tensor> values;

 private:
  static ValueId Check(StatusOr<ValueId> id) {
    if (!id.ok()) throw std::runtime_error(id.status().ToString());
    return *id;
  }
  static Tensor Ramp(const Shape& shape) {
    std::vector<double> e(static_cast<size_t>(shape.num_elements()));
    for (size_t i = 0; i < e.size(); ++i) e[i] = 0.25 + 0.125 * static_cast<double>(i % 7);
    return Tensor::FromValues(DType::kFloat32, shape, e);
  }
};

// Every op with an ONNX form, each attribute variant once. Shapes in the comments.
inline Builder EveryOp(bool with_clip = true) {
  Builder b;
  const ValueId x = b.Placeholder("x", Shape{kBatchDim, 3, 9, 9});
  const ValueId ids = b.Placeholder("ids", Shape{kBatchDim, 5}, DType::kInt32);
  // [N, 4, 4, 8]: OH = (9 + 1 + 0 - 3) / 2 + 1, OW = (9 + 2 + 1 - 5) / 1 + 1.
  const ValueId conv = b.Node(
      "conv", "conv2d", {x, b.Parameter("cw", Shape{4, 3, 3, 3}), b.Parameter("cb", Shape{4})},
      {{"padding", std::vector<int64_t>{1, 2, 0, 1}},
       {"stride", std::vector<int64_t>{2, 1}},
       {"dilation", std::vector<int64_t>{1, 2}}});
  const ValueId dw = b.Node("dw", "conv2d", {conv, b.Parameter("dw_w", Shape{4, 1, 3, 3})},
                            {{"padding", std::vector<int64_t>{1, 1}}, {"groups", int64_t{4}}});
  const ValueId bn = b.Node("bn", "batch_norm",
                            {dw, b.State("rm", Shape{4}), b.State("rv", Shape{4}),
                             b.Parameter("bw", Shape{4}), b.Parameter("bb", Shape{4})},
                            {{"momentum", 0.25}, {"epsilon", 1e-3}});
  b.Node("bn_plain", "batch_norm", {conv, b.State("rm2", Shape{4}), b.State("rv2", Shape{4})});
  const ValueId relu = b.Node("relu", "relu", {bn});
  const ValueId sig = b.Node("sig", "sigmoid", {bn});
  for (const char* op : {"tanh", "erf", "exp", "neg"}) b.Node(op, op, {bn});
  for (const char* op : {"reciprocal", "log", "sqrt"}) b.Node(op, op, {sig});
  b.Node("leaky", "leaky_relu", {bn}, {{"alpha", 0.2}});
  for (const char* op : {"add", "sub", "mul", "div", "pow", "max", "min"}) {
    b.Node(op, op, {relu, sig});
  }
  b.Node("add_scalar", "add_scalar", {bn}, {{"c", 1.5}});
  b.Node("mul_scalar", "mul_scalar", {bn}, {{"a", -2.0}});
  b.Node("square", "square", {bn});
  b.Node("gelu", "gelu", {bn});
  b.Node("gelu_tanh", "gelu", {bn}, {{"approximate", std::string("tanh")}});
  if (with_clip) {
    b.Node("clip", "clip", {bn}, {{"min", 0.0}, {"max", 6.0}});
    b.Node("clip_lo", "clip", {bn}, {{"min", -1.0}});
    b.Node("clip_hi", "clip", {bn}, {{"max", 1.0}});
  }
  b.Node("dropout", "dropout", {relu}, {{"p", 0.3}});
  b.Node("maxpool", "max_pool2d", {relu}, {{"kernel", std::vector<int64_t>{2, 2}}});  // 2 x 4
  // [N, 4, 2, 6]: OH = ceil((4 + 1 - 3) / 2) + 1, OW = (8 + 2 - 5) / 1 + 1.
  b.Node("maxpool_ceil", "max_pool2d", {relu},
         {{"kernel", std::vector<int64_t>{3, 3}},
          {"stride", std::vector<int64_t>{2, 1}},
          {"padding", std::vector<int64_t>{1, 1, 0, 1}},
          {"dilation", std::vector<int64_t>{1, 2}},
          {"ceil_mode", int64_t{1}}});
  // [N, 4, 2, 3]: ceil_mode's last windows, starting at row 6 and column 9, would start past
  // the top/left padding and x (PyTorch's rule drops them): OH = ceil(4 / 3) + 1 - 1 and
  // OW = ceil(8 / 3) + 1 - 1.
  for (const char* op : {"max_pool2d", "avg_pool2d"}) {
    b.Node(std::string(op) + "_dropped", op, {relu},
           {{"kernel", std::vector<int64_t>{2, 2}},
            {"stride", std::vector<int64_t>{3, 3}},
            {"padding", std::vector<int64_t>{1, 1}},
            {"ceil_mode", int64_t{1}}});
  }
  // [N, 4, 5, 5]: OH = (4 + 2 - 2) / 1 + 1, OW = ceil((8 + 2 - 3) / 2) + 1.
  b.Node("avgpool", "avg_pool2d", {relu},
         {{"kernel", std::vector<int64_t>{2, 3}},
          {"stride", std::vector<int64_t>{1, 2}},
          {"padding", std::vector<int64_t>{1, 1}},
          {"ceil_mode", int64_t{1}},
          {"count_include_pad", int64_t{0}}});
  const ValueId gap = b.Node("gap", "global_avg_pool2d", {relu});
  const ValueId flat = b.Node("flat", "flatten", {gap}, {{"axis", int64_t{1}}});  // [N, 4]
  const ValueId lw = b.Parameter("lw", Shape{4, 5});
  const ValueId fc = b.Node("fc", "linear", {flat, lw, b.Parameter("lb", Shape{5})});
  b.Node("fc_nobias", "linear", {flat, lw});
  const ValueId seq =
      b.Node("seq", "reshape", {relu}, {{"shape", std::vector<int64_t>{0, 4, -1}}});  // [N, 4, 32]
  const ValueId fc3 = b.Node("fc3", "linear",
                             {seq, b.Parameter("lw3", Shape{32, 6}), b.Parameter("lb3", Shape{6})});
  b.Node("fc3_nobias", "linear", {seq, b.Parameter("lw3b", Shape{32, 6})});
  b.Node("mm_tb", "matmul", {flat, b.Parameter("mw", Shape{5, 4})}, {{"transpose_b", int64_t{1}}});
  b.Node("mm_ta", "matmul", {flat, flat}, {{"transpose_a", int64_t{1}}});  // [4, 4]
  b.Node("bmm_tb", "matmul", {fc3, fc3}, {{"transpose_b", int64_t{1}}});   // [N, 4, 4]
  b.Node("bmm_ta", "matmul", {fc3, fc3}, {{"transpose_a", int64_t{1}}});   // [N, 6, 6]
  b.Node("bmm", "matmul", {fc3, b.Parameter("mw3", Shape{6, 2})});         // [N, 4, 2]
  b.Node("perm", "transpose", {relu}, {{"perm", std::vector<int64_t>{0, 2, 3, 1}}});
  b.Node("reversed", "transpose", {fc3});  // [6, 4, N]
  b.Node("cat", "concat", {relu, bn}, {{"axis", int64_t{1}}});
  b.Node("softmax", "softmax", {fc}, {{"axis", int64_t{-1}}});
  b.Node("log_softmax", "log_softmax", {fc3}, {{"axis", int64_t{1}}});
  b.Node("mean_hw", "mean", {relu},
         {{"axes", std::vector<int64_t>{2, 3}}, {"keepdims", int64_t{1}}});
  b.Node("mean_all", "mean", {relu});
  b.Node("sum_c", "sum", {relu}, {{"axes", std::vector<int64_t>{1}}});
  b.Node("sum_all", "sum", {relu});
  b.Node("emb", "embedding", {b.Parameter("table", Shape{7, 3}), ids});  // [N, 5, 3]
  b.Node("ln", "layer_norm", {fc3, b.Parameter("lnw", Shape{6}), b.Parameter("lnb", Shape{6})},
         {{"epsilon", 1e-4}});
  b.Node("ln_plain", "layer_norm", {seq}, {{"normalized_ndim", int64_t{2}}});
  using Ints = std::vector<int64_t>;
  // [N, 2, 4, 4]: channels 1, 2; columns 1, 3, 5, 7.
  b.Node(
      "slice", "slice", {relu},
      {{"starts", Ints{1, -7}}, {"ends", Ints{3, 8}}, {"axes", Ints{1, 3}}, {"steps", Ints{1, 2}}});
  b.Node("slice_back", "slice", {relu},
         {{"starts", Ints{6}}, {"ends", Ints{1}}, {"axes", Ints{-1}}, {"steps", Ints{-2}}});
  b.Node("pad", "pad", {relu}, {{"pads", Ints{0, 0, 1, 2, 0, 0, 0, 1}}, {"value", 0.5}});
  b.Node("crop", "pad", {relu}, {{"pads", Ints{0, 0, -1, 0, 0, 0, 0, -2}}});  // [N, 4, 3, 6]
  const std::vector<double> k = {1, 2, 3, 4};
  b.Node("plus_k", "add",
         {relu, *b.graph.AddConstant("k", Tensor::FromValues(DType::kFloat32, Shape{4, 1, 1}, k))});
  return b;
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_ENGINE_ONNX_EVERY_OP_GRAPH_H_
