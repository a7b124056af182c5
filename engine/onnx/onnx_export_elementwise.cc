// The ONNX forms of the elementwise ops: unary and binary math, the scalar ops, activations,
// clip and dropout.
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "engine/onnx/onnx_export_internal.h"

namespace backflow::onnx_export {
namespace {

// Ops that are one ONNX operator of the same inputs and no attributes.
const std::map<std::string, std::string, std::less<>>& DirectOps() {
  static const std::map<std::string, std::string, std::less<>> kOps = {
      {"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"},
      {"erf", "Erf"},   {"exp", "Exp"},         {"log", "Log"},
      {"sqrt", "Sqrt"}, {"neg", "Neg"},         {"reciprocal", "Reciprocal"},
      {"add", "Add"},   {"sub", "Sub"},         {"mul", "Mul"},
      {"div", "Div"},   {"pow", "Pow"},         {"max", "Max"},
      {"min", "Min"}};
  return kOps;
}

Status EmitDirect(NodeWriter& w) {
  std::vector<std::string> inputs;
  for (int i = 0; i < w.num_inputs(); ++i) inputs.push_back(w.input(i));
  w.Add(DirectOps().find(w.node().op)->second, std::move(inputs), w.output());
  return Status::Ok();
}

Status EmitLeakyRelu(NodeWriter& w) {
  SetFloat(w.Add("LeakyRelu", {w.input(0)}, w.output()), "alpha",
           w.attrs().GetFloat("alpha", 0.01));
  return Status::Ok();
}

Status EmitAddScalar(NodeWriter& w) {
  w.Add("Add", {w.input(0), w.Scalar("c", w.attrs().GetFloat("c", 0.0))}, w.output());
  return Status::Ok();
}

Status EmitMulScalar(NodeWriter& w) {
  w.Add("Mul", {w.input(0), w.Scalar("a", w.attrs().GetFloat("a", 1.0))}, w.output());
  return Status::Ok();
}

Status EmitSquare(NodeWriter& w) {
  w.Add("Pow", {w.input(0), w.Scalar("exponent", 2.0)}, w.output());
  return Status::Ok();
}

// Note [GELU in opset 14]: opset 14 has no Gelu operator, so gelu is written as the nodes
// torch.onnx.export (1.13) writes for it, in its order, so that one pattern matcher in the
// importer reads both:
//   "none": Div(x, sqrt 2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5)
//   "tanh": Mul(x, x) -> Mul(x, .) -> Mul(., 0.044715) -> Add(x, .) -> Mul(., sqrt(2/pi))
//           -> Tanh -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5)
Status EmitGeluErf(NodeWriter& w) {
  const std::string& x = w.input(0);
  const std::string scaled = w.Temp("div");
  w.Add("Div", {x, w.Scalar("sqrt2", std::sqrt(2.0))}, scaled);
  const std::string erf = w.Temp("erf");
  w.Add("Erf", {scaled}, erf);
  const std::string plus_one = w.Temp("add");
  w.Add("Add", {erf, w.Scalar("one", 1.0)}, plus_one);
  const std::string times_x = w.Temp("mul");
  w.Add("Mul", {x, plus_one}, times_x);
  w.Add("Mul", {times_x, w.Scalar("half", 0.5)}, w.output());
  return Status::Ok();
}

Status EmitGeluTanh(NodeWriter& w) {
  const std::string& x = w.input(0);
  const std::string square = w.Temp("square");
  w.Add("Mul", {x, x}, square);
  const std::string cube = w.Temp("cube");
  w.Add("Mul", {x, square}, cube);
  const std::string kappa_cube = w.Temp("kappa_cube");
  w.Add("Mul", {cube, w.Scalar("kappa", 0.044715)}, kappa_cube);
  const std::string sum = w.Temp("sum");
  w.Add("Add", {x, kappa_cube}, sum);
  const std::string inner = w.Temp("inner");
  w.Add("Mul", {sum, w.Scalar("beta", std::sqrt(2.0 / M_PI))}, inner);
  const std::string tanh = w.Temp("tanh");
  w.Add("Tanh", {inner}, tanh);
  const std::string plus_one = w.Temp("add");
  w.Add("Add", {tanh, w.Scalar("one", 1.0)}, plus_one);
  const std::string times_x = w.Temp("mul");
  w.Add("Mul", {x, plus_one}, times_x);
  w.Add("Mul", {times_x, w.Scalar("half", 0.5)}, w.output());
  return Status::Ok();
}

Status EmitGelu(NodeWriter& w) {
  const std::string form = w.attrs().GetString("approximate", "none");
  if (form == "tanh") return EmitGeluTanh(w);
  if (form == "none") return EmitGeluErf(w);
  return InvalidArgumentError("node '" + w.output() + "': gelu approximate \"" + form +
                              "\" has no ONNX form");
}

// An absent or infinite bound is left out (ONNX Clip's empty optional input), as torch writes
// a one-sided clamp.
Status EmitClip(NodeWriter& w) {
  const double inf = std::numeric_limits<double>::infinity();
  const double lo = w.attrs().GetFloat("min", -inf);
  const double hi = w.attrs().GetFloat("max", inf);
  const std::string min = std::isinf(lo) ? "" : w.Scalar("min", lo);
  const std::string max = std::isinf(hi) ? "" : w.Scalar("max", hi);
  w.Add("Clip", {w.input(0), min, max}, w.output());
  return Status::Ok();
}

// Inference mode: no training_mode input (false), so ONNX Dropout is the identity; the ratio is
// kept for an importer that trains the model again.
Status EmitDropout(NodeWriter& w) {
  w.Add("Dropout", {w.input(0), w.Float32Scalar("ratio", w.attrs().GetFloat("p", 0.5))},
        w.output());
  return Status::Ok();
}

}  // namespace

void AddElementwiseEmitters(EmitterTable& table) {
  for (const auto& [op, onnx_op] : DirectOps()) table.emplace(op, &EmitDirect);
  table.emplace("leaky_relu", &EmitLeakyRelu);
  table.emplace("add_scalar", &EmitAddScalar);
  table.emplace("mul_scalar", &EmitMulScalar);
  table.emplace("square", &EmitSquare);
  table.emplace("gelu", &EmitGelu);
  table.emplace("clip", &EmitClip);
  table.emplace("dropout", &EmitDropout);
}

}  // namespace backflow::onnx_export
