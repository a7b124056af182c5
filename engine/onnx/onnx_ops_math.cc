// Elementwise operators and matrix products.
#include <cmath>
#include <string>

#include "engine/onnx/onnx_known.h"
#include "engine/onnx/onnx_ops.h"

namespace backflow::onnx_import {
namespace {

struct UnaryInfo {
  const char* gate;
  double (*fold)(double);
};

const std::map<std::string, UnaryInfo, std::less<>>& Unaries() {
  static const std::map<std::string, UnaryInfo, std::less<>> table = {
      {"Relu", {"relu", [](double x) { return x > 0 ? x : 0.0; }}},
      {"Sigmoid", {"sigmoid", [](double x) { return 1.0 / (1.0 + std::exp(-x)); }}},
      {"Tanh", {"tanh", [](double x) { return std::tanh(x); }}},
      {"Erf", {"erf", [](double x) { return std::erf(x); }}},
      {"Exp", {"exp", [](double x) { return std::exp(x); }}},
      {"Log", {"log", [](double x) { return std::log(x); }}},
      {"Sqrt", {"sqrt", [](double x) { return std::sqrt(x); }}},
      {"Neg", {"neg", [](double x) { return -x; }}},
      {"Reciprocal", {"reciprocal", [](double x) { return 1.0 / x; }}},
  };
  return table;
}

KnownOp BinaryKind(std::string_view op) {
  if (op == "Add") return KnownOp::kAdd;
  if (op == "Sub") return KnownOp::kSub;
  if (op == "Mul") return KnownOp::kMul;
  if (op == "Div") return KnownOp::kDiv;
  if (op == "Max") return KnownOp::kMax;
  return KnownOp::kMin;
}

std::string Lower(std::string_view op) {
  std::string s(op);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Status UnaryOp(const NodeContext& ctx) {
  const UnaryInfo& info = Unaries().at(ctx.op());
  if (ctx.IsKnown(0)) {
    BF_ASSIGN_OR_RETURN(Known k, ctx.KnownInput(0, "input"));
    if (k.batch_dependent()) return ctx.Error("applied to a value computed from the batch size");
    std::vector<double> values = k.is_float ? k.f : std::vector<double>(k.a.begin(), k.a.end());
    for (double& v : values) v = info.fold(v);
    ctx.SetKnown(0, Known::Floats(std::move(values), k.shape));
    return Status::Ok();
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  return ctx.Emit(0, "", info.gate, {x}).status();
}

Status LeakyReluOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(double alpha, ctx.Float("alpha", 0.01));
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  AttrMap attrs;
  attrs["alpha"] = FloatAttr(alpha);
  return ctx.Emit(0, "", "leaky_relu", {x}, attrs).status();
}

Status BinaryOp(const NodeContext& ctx) {
  if (ctx.num_inputs() != 2) {
    return ctx.Error("takes exactly 2 inputs here, not " + std::to_string(ctx.num_inputs()));
  }
  if (ctx.IsKnown(0) && ctx.IsKnown(1)) {
    BF_ASSIGN_OR_RETURN(Known x, ctx.KnownInput(0, "A"));
    BF_ASSIGN_OR_RETURN(Known y, ctx.KnownInput(1, "B"));
    BF_ASSIGN_OR_RETURN(Known k, KnownBinary(ctx, BinaryKind(ctx.op()), x, y));
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  BF_ASSIGN_OR_RETURN(std::string a, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(std::string b, ctx.Tensor(1));
  return ctx.Emit(0, "", Lower(ctx.op()), {a, b}).status();
}

Status PowOp(const NodeContext& ctx) {
  if (ctx.IsKnown(0) && ctx.IsKnown(1)) {
    BF_ASSIGN_OR_RETURN(Known x, ctx.KnownInput(0, "X"));
    BF_ASSIGN_OR_RETURN(Known y, ctx.KnownInput(1, "Y"));
    BF_ASSIGN_OR_RETURN(Known k, KnownBinary(ctx, KnownOp::kPow, x, y));
    ctx.SetKnown(0, std::move(k));
    return Status::Ok();
  }
  BF_ASSIGN_OR_RETURN(std::string x, ctx.Tensor(0));
  if (ctx.IsKnown(1)) {
    BF_ASSIGN_OR_RETURN(Known y, ctx.KnownInput(1, "Y"));
    if (y.size() == 1 && !y.batch_dependent() && (y.is_float ? y.f[0] : static_cast<double>(y.a[0])) == 2.0) {
      return ctx.Emit(0, "", "square", {x}).status();  // x^2: no log(x) in the gradient
    }
  }
  BF_ASSIGN_OR_RETURN(std::string y, ctx.Tensor(1));
  return ctx.Emit(0, "", "pow", {x, y}).status();
}

Status MatMulOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(std::string a, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(std::string b, ctx.Tensor(1));
  return ctx.Emit(0, "", "matmul", {a, b}).status();
}

// Y = alpha * op(A) op(B) + beta * C. The common case (no transposes, unit factors, a bias
// vector) is backflow's linear; otherwise a matmul with the transposes as flags, scaled, plus C.
Status GemmOp(const NodeContext& ctx) {
  BF_ASSIGN_OR_RETURN(double alpha, ctx.Float("alpha", 1.0));
  BF_ASSIGN_OR_RETURN(double beta, ctx.Float("beta", 1.0));
  BF_ASSIGN_OR_RETURN(int64_t trans_a, ctx.Int("transA", 0));
  BF_ASSIGN_OR_RETURN(int64_t trans_b, ctx.Int("transB", 0));
  BF_ASSIGN_OR_RETURN(std::string a, ctx.Tensor(0));
  BF_ASSIGN_OR_RETURN(std::string b, ctx.Tensor(1));
  const bool has_c = ctx.has_input(2);
  std::string c;
  if (has_c) {
    BF_ASSIGN_OR_RETURN(c, ctx.Tensor(2));
  }
  if (!trans_a && !trans_b && alpha == 1.0 && beta == 1.0 && has_c) {
    BF_ASSIGN_OR_RETURN(auto shapes, ctx.Shapes(c));
    if (shapes.first.rank() == 1) return ctx.Emit(0, "", "linear", {a, b, c}).status();
  }
  const bool scaled = alpha != 1.0;
  AttrMap flags;
  if (trans_a) flags["transpose_a"] = IntAttr(1);
  if (trans_b) flags["transpose_b"] = IntAttr(1);
  BF_ASSIGN_OR_RETURN(std::string y, ctx.Emit(0, scaled || has_c ? "matmul" : "", "matmul",
                                             {a, b}, flags));
  if (scaled) {
    AttrMap s;
    s["a"] = FloatAttr(alpha);
    BF_ASSIGN_OR_RETURN(y, ctx.Emit(0, has_c ? "alpha" : "", "mul_scalar", {y}, s));
  }
  if (!has_c) return Status::Ok();
  if (beta != 1.0) {
    AttrMap s;
    s["a"] = FloatAttr(beta);
    BF_ASSIGN_OR_RETURN(c, ctx.Emit(0, "beta", "mul_scalar", {c}, s));
  }
  return ctx.Emit(0, "", "add", {y, c}).status();
}

}  // namespace backflow::onnx_import
