// Every public op, walked from the registry: each differentiable one has a finite-difference case
// in kCases below (run with the shared checker in float64 at the seeds' 1e-7), and each has an
// entry in the op reference (Gate::doc, docs/ops.md) whose attribute defaults are what the gate
// does when the attribute is absent. A new public op fails here until it has both.
//
// The per-family tests (binary_test.cc, conv_test.cc, ...) check each op in depth; this table is
// the one place that says every op is checked at all, so it keeps one or two small cases per op.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gates/builtin.h"
#include "engine/ir/gate_registry.h"
#include "tests/testing/gradient_checker.h"

namespace backflow {
namespace {

using ::backflow::testing::GateCase;
using Ints = std::vector<int64_t>;
using Adjust = std::function<double(int, double)>;

// ---- keeping inputs where the ops are smooth -----------------------------------------------

// |v| >= 0.5: away from relu's kink and from the poles of div and reciprocal.
double AwayFromZero(int, double v) { return v >= 0 ? v + 0.5 : v - 0.5; }

// Only input `i` moved away from zero (div's divisor).
Adjust AwayFromZeroAt(int i) {
  return [i](int input, double v) { return input == i ? AwayFromZero(input, v) : v; };
}

// a and b on interleaved grids 0.05 apart, so max and min never see a tie.
double NoTies(int input, double v) { return std::round(v * 10) / 10 + (input == 0 ? 0.05 : 0); }
// Multiples of 0.2: at least 0.1 from the clip cases' bounds +-0.5.
double AwayFromClipBounds(int, double v) { return std::round(v * 5) / 5; }

// Every element distinct by at least 1e-3 (a 0.1 grid plus index / 1000): max pooling windows
// have one clear arg-max. The checker adjusts elements in row-major order, so a counter knows
// the index.
Adjust DistinctElements() {
  auto index = std::make_shared<int64_t>(0);
  return [index](int, double v) {
    return std::round(v * 10) / 10 + 0.001 * static_cast<double>((*index)++ % 97);
  };
}

// Input i as |v| + 0.5 (a variance), the others as drawn.
Adjust PositiveAt(int i) {
  return [i](int input, double v) { return input == i ? std::abs(v) + 0.5 : v; };
}

// Input 1 as class ids in [0, classes); input 0 as drawn.
Adjust LabelsIn(int64_t classes) {
  return [classes](int input, double v) {
    if (input != 1) return v;
    const double id = std::floor((v + 2) / 4 * static_cast<double>(classes));
    return std::clamp(id, 0.0, static_cast<double>(classes - 1));
  };
}

// Scores on a 0.3 grid plus a jitter under 0.015, so every s_j - s_y + 1 is at least 0.07 from
// the hinge's kink; input 1 as labels.
Adjust SvmInputs(int64_t classes) {
  return [classes](int input, double v) {
    if (input == 1) return LabelsIn(classes)(input, v);
    const double grid = std::round(v / 0.3) * 0.3;
    return grid + 0.1 * (v - grid);
  };
}

// Logits with |x| in [0.5, 1.5] and targets in [0.02, 0.12] or [0.88, 0.98]: gradients stay
// large against the finite difference's rounding, and perturbed targets stay in [0, 1].
double SigmoidInputs(int input, double v) {
  if (input == 0) return v < 0 ? v / 2 - 0.5 : v / 2 + 0.5;
  return v < 0 ? 0.02 + (v + 2) / 20 : 0.88 + v / 20;
}

// ---- the table ------------------------------------------------------------------------------

struct CoverageCase {
  std::string name;  // the op, or the op and what the case varies
  GateCase check;
};
void PrintTo(const CoverageCase& c, std::ostream* os) { *os << c.name; }

// Small shapes keep every gradient element large against the finite difference's rounding, so
// the linear gates (conv2d, pooling, matmul) pass at 1e-7 too (Note [Finite differences on many
// outputs] in spatial_test_util.h).
const std::vector<CoverageCase>& Cases() {
  static const auto* cases = new std::vector<CoverageCase>{
      {"add", {.op = "add", .shapes = {{2, 3}, {3}}}},
      {"sub", {.op = "sub", .shapes = {{2, 1}, {1, 3}}}},
      {"mul", {.op = "mul", .shapes = {{2, 3}, {2, 3}}}},
      {"div", {.op = "div", .shapes = {{2, 3}, {2, 1}}, .adjust = AwayFromZeroAt(1)}},
      {"max", {.op = "max", .shapes = {{2, 3}, {2, 3}}, .adjust = NoTies}},
      {"min", {.op = "min", .shapes = {{2, 3}, {3}}, .adjust = NoTies}},
      {"pow", {.op = "pow", .shapes = {{2, 3}, {2, 3}}, .low = 0.5, .high = 2}},
      {"add_n", {.op = "add_n", .shapes = {{2, 3}, {2, 3}, {2, 3}}}},
      {"neg", {.op = "neg", .shapes = {{2, 3}}}},
      {"exp", {.op = "exp", .shapes = {{2, 3}}}},
      {"log", {.op = "log", .shapes = {{2, 3}}, .low = 0.5, .high = 3}},
      {"reciprocal", {.op = "reciprocal", .shapes = {{2, 3}}, .adjust = AwayFromZero}},
      {"add_scalar", {.op = "add_scalar", .shapes = {{2, 3}}, .attrs = {{"c", 2.5}}}},
      {"mul_scalar", {.op = "mul_scalar", .shapes = {{2, 3}}, .attrs = {{"a", -3.0}}}},
      {"square", {.op = "square", .shapes = {{2, 3}}}},
      {"sqrt", {.op = "sqrt", .shapes = {{2, 3}}, .low = 0.5, .high = 3}},
      {"sigmoid", {.op = "sigmoid", .shapes = {{2, 3}}, .low = -4, .high = 4}},
      {"tanh", {.op = "tanh", .shapes = {{2, 3}}}},
      {"erf", {.op = "erf", .shapes = {{2, 3}}}},
      {"gelu", {.op = "gelu", .shapes = {{2, 3}}}},
      // Softmax's gradients shrink with the spread of x; a narrow range keeps them well above
      // the finite-difference noise the relative tolerance would otherwise see.
      {"softmax", {.op = "softmax", .shapes = {{3, 4}}, .low = -0.5, .high = 0.5}},
      {"softmax_axis",
       {.op = "softmax",
        .shapes = {{2, 3, 4}},
        .attrs = {{"axis", int64_t{1}}},
        .low = -0.5,
        .high = 0.5}},
      {"log_softmax", {.op = "log_softmax", .shapes = {{2, 3, 4}}}},
      {"log_softmax_axis",
       {.op = "log_softmax", .shapes = {{2, 3, 4}}, .attrs = {{"axis", int64_t{-3}}}}},
      // Bounds +-0.5 with x kept 0.1 away from them, where the derivative jumps.
      {"clip",
       {.op = "clip",
        .shapes = {{3, 4}},
        .attrs = {{"min", -0.5}, {"max", 0.5}},
        .adjust = AwayFromClipBounds}},
      {"clip_min", {.op = "clip", .shapes = {{3, 4}}, .attrs = {{"min", -0.5}},
                    .adjust = AwayFromClipBounds}},
      {"clip_max", {.op = "clip", .shapes = {{3, 4}}, .attrs = {{"max", 0.5}},
                    .adjust = AwayFromClipBounds}},
      {"gelu_tanh",
       {.op = "gelu", .shapes = {{2, 3}}, .attrs = {{"approximate", std::string("tanh")}}}},
      {"relu", {.op = "relu", .shapes = {{3, 4}}, .adjust = AwayFromZero}},
      {"leaky_relu",
       {.op = "leaky_relu", .shapes = {{3, 4}}, .attrs = {{"alpha", 0.2}}, .adjust = AwayFromZero}},
      {"sum", {.op = "sum", .shapes = {{2, 3, 4}}, .attrs = {{"axes", Ints{1}}}}},
      {"mean",
       {.op = "mean",
        .shapes = {{2, 3, 4}},
        .attrs = {{"axes", Ints{0, 2}}, {"keepdims", int64_t{1}}}}},
      {"dropout", {.op = "dropout", .shapes = {{4, 5}}, .attrs = {{"p", 0.3}}}},
      {"layer_norm", {.op = "layer_norm", .shapes = {{2, 3, 4}}}},
      {"layer_norm_2d",
       {.op = "layer_norm", .shapes = {{2, 3, 4}}, .attrs = {{"normalized_ndim", int64_t{2}}}}},
      {"layer_norm_affine",
       {.op = "layer_norm", .shapes = {{2, 3, 4}, {4}, {4}}, .wrt = {0, 1, 2}}},
      {"layer_norm_affine_2d",
       {.op = "layer_norm",
        .shapes = {{2, 3, 4}, {3, 4}, {3, 4}},
        .attrs = {{"epsilon", 0.1}},
        .wrt = {0, 1, 2}}},
      {"batch_norm_2d",
       {.op = "batch_norm", .shapes = {{5, 3}, {3}, {3}}, .adjust = PositiveAt(2), .wrt = {0}}},
      {"batch_norm_2d_affine",
       {.op = "batch_norm",
        .shapes = {{5, 3}, {3}, {3}, {3}, {3}},
        .adjust = PositiveAt(2),
        .wrt = {0, 3, 4}}},
      {"batch_norm_4d",
       {.op = "batch_norm",
        .shapes = {{2, 3, 2, 3}, {3}, {3}},
        .attrs = {{"epsilon", 0.1}, {"momentum", 0.5}},
        .adjust = PositiveAt(2),
        .wrt = {0},
        // seed 1234 draws a gradient of 4e-4 that the differences miss by 3e-7 relative
        .seed = 7}},
      {"batch_norm_4d_affine",
       {.op = "batch_norm",
        .shapes = {{2, 3, 2, 3}, {3}, {3}, {3}, {3}},
        .adjust = PositiveAt(2),
        .wrt = {0, 3, 4}}},
      {"batch_norm_inference_2d_affine",
       {.op = "batch_norm",
        .shapes = {{5, 3}, {3}, {3}, {3}, {3}},
        .adjust = PositiveAt(2),
        .wrt = {0, 3, 4},
        .info = {.training = false}}},
      {"batch_norm_inference_4d",
       {.op = "batch_norm",
        .shapes = {{2, 3, 2, 3}, {3}, {3}},
        .adjust = PositiveAt(2),
        .wrt = {0},
        .info = {.training = false}}},
      {"reshape", {.op = "reshape", .shapes = {{2, 3, 4}}, .attrs = {{"shape", Ints{4, 0, -1}}}}},
      {"flatten", {.op = "flatten", .shapes = {{2, 3, 4}}, .attrs = {{"axis", int64_t{2}}}}},
      {"transpose", {.op = "transpose", .shapes = {{2, 3, 4}}, .attrs = {{"perm", Ints{2, 0, 1}}}}},
      {"concat",
       {.op = "concat", .shapes = {{2, 3}, {2, 1}, {2, 2}}, .attrs = {{"axis", int64_t{-1}}}}},
      {"slice",
       {.op = "slice", .shapes = {{3, 4}}, .attrs = {{"starts", Ints{1}}, {"ends", Ints{3}}}}},
      // Rows 2, 0 backwards (the INT64_MIN end torch writes), columns 1, 3.
      {"slice_negative_step_several_axes",
       {.op = "slice",
        .shapes = {{3, 4}},
        .attrs = {{"starts", Ints{-1, 1}},
                  {"ends", Ints{INT64_MIN, INT64_MAX}},
                  {"axes", Ints{0, -1}},
                  {"steps", Ints{-2, 2}}}}},
      {"pad", {.op = "pad", .shapes = {{2, 3}}, .attrs = {{"pads", Ints{1, 0, 0, 2}}}}},
      // Row 0 cropped, one added after; two columns added before, three cropped after.
      {"pad_negative_value",
       {.op = "pad", .shapes = {{3, 4}}, .attrs = {{"pads", Ints{-1, 2, 1, -3}}, {"value", 0.5}}}},
      {"matmul", {.op = "matmul", .shapes = {{3, 4}, {4, 5}}}},
      {"matmul_batched_transposed",
       {.op = "matmul",
        .shapes = {{2, 4, 3}, {2, 5, 4}},
        .attrs = {{"transpose_a", int64_t{1}}, {"transpose_b", int64_t{1}}}}},
      {"matmul_nd_2d", {.op = "matmul", .shapes = {{2, 3, 4}, {4, 5}}}},
      {"matmul_nd_nd_broadcast", {.op = "matmul", .shapes = {{2, 1, 3, 4}, {3, 4, 2}}, .seed = 3}},
      {"linear", {.op = "linear", .shapes = {{3, 4}, {4, 5}, {5}}}},
      {"linear_3d", {.op = "linear", .shapes = {{2, 3, 4}, {4, 5}, {5}}}},
      {"conv2d",
       {.op = "conv2d",
        .shapes = {{1, 2, 5, 5}, {3, 2, 3, 3}, {3}},
        .attrs = {{"stride", Ints{2, 2}}, {"padding", Ints{1, 1}}}}},
      {"conv2d_groups2",
       {.op = "conv2d",
        .shapes = {{1, 4, 5, 5}, {6, 2, 3, 3}, {6}},
        .attrs = {{"groups", int64_t{2}}, {"padding", Ints{1, 1}}}}},
      {"conv2d_depthwise",
       {.op = "conv2d",
        .shapes = {{1, 2, 3, 4}, {4, 1, 2, 2}, {4}},
        .attrs = {{"groups", int64_t{2}}}}},
      {"max_pool2d",
       {.op = "max_pool2d",
        .shapes = {{1, 2, 4, 4}},
        .attrs = {{"kernel", Ints{2, 2}}},
        .adjust = DistinctElements()}},
      {"max_pool2d_dilation_ceil_mode",
       {.op = "max_pool2d",
        .shapes = {{1, 2, 6, 7}},
        .attrs = {{"kernel", Ints{2, 2}},
                  {"stride", Ints{2, 2}},
                  {"padding", Ints{1, 1}},
                  {"dilation", Ints{2, 2}},
                  {"ceil_mode", int64_t{1}}},
        .adjust = DistinctElements()}},
      {"global_avg_pool2d", {.op = "global_avg_pool2d", .shapes = {{2, 3, 3, 5}}}},
      {"avg_pool2d",
       {.op = "avg_pool2d",
        .shapes = {{1, 2, 4, 4}},
        .attrs = {{"kernel", Ints{3, 3}}, {"stride", Ints{1, 1}}, {"padding", Ints{1, 1}}}}},
      {"avg_pool2d_exclude_pad",
       {.op = "avg_pool2d",
        .shapes = {{1, 2, 4, 4}},
        .attrs = {{"kernel", Ints{3, 3}},
                  {"stride", Ints{1, 1}},
                  {"padding", Ints{1, 1}},
                  {"count_include_pad", int64_t{0}}}}},
      {"avg_pool2d_ceil_mode",
       {.op = "avg_pool2d",
        .shapes = {{1, 2, 6, 5}},
        .attrs = {{"kernel", Ints{3, 2}},
                  {"stride", Ints{2, 2}},
                  {"padding", Ints{1, 0}},
                  {"ceil_mode", int64_t{1}}}}},
      {"avg_pool2d_ceil_mode_exclude_pad",
       {.op = "avg_pool2d",
        .shapes = {{1, 2, 6, 5}},
        .attrs = {{"kernel", Ints{3, 2}},
                  {"stride", Ints{2, 2}},
                  {"padding", Ints{1, 0}},
                  {"ceil_mode", int64_t{1}},
                  {"count_include_pad", int64_t{0}}}}},
      {"squared_error",
       {.op = "squared_error",
        .shapes = {{3, 4}, {3, 4}},
        .attrs = {{"reduction", std::string("mean")}}}},
      {"softmax_cross_entropy",
       {.op = "softmax_cross_entropy", .shapes = {{4, 5}, {4}}, .adjust = LabelsIn(5), .wrt = {0}}},
      {"softmax_cross_entropy_int64_labels",
       {.op = "softmax_cross_entropy",
        .shapes = {{4, 5}, {4}},
        .adjust = LabelsIn(5),
        .dtypes = {DType::kFloat64, DType::kInt64}}},
      // Six ids over four rows: some rows are gathered twice, so their gradients sum.
      {"embedding",
       {.op = "embedding",
        .shapes = {{4, 3}, {2, 3}},
        .adjust = LabelsIn(4),
        .dtypes = {DType::kFloat64, DType::kInt64}}},
      // padding_idx -3 is row 1, which these ids (0, 2, 3) never gather: finite differences
      // would disagree on a row whose gradient is dropped (embedding_test checks it is zero).
      {"embedding_padding_idx",
       {.op = "embedding",
        .shapes = {{4, 3}, {6}},
        .attrs = {{"padding_idx", int64_t{-3}}},
        .adjust = [](int input, double v) {
          const double id = LabelsIn(3)(input, v);
          return input == 1 && id >= 1 ? id + 1 : id;
        },
        .dtypes = {DType::kFloat64, DType::kInt32}}},
      {"svm_hinge",
       {.op = "svm_hinge", .shapes = {{4, 5}, {4}}, .adjust = SvmInputs(5), .wrt = {0}}},
      {"sigmoid_cross_entropy",
       {.op = "sigmoid_cross_entropy", .shapes = {{2, 3}, {2, 3}}, .adjust = SigmoidInputs}},
  };
  return *cases;
}

std::set<std::string> OpsWithCases() {
  std::set<std::string> ops;
  for (const CoverageCase& c : Cases()) ops.insert(c.check.op);
  return ops;
}

std::string Join(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// ---- coverage --------------------------------------------------------------------------------

TEST(GradientCoverageTest, EveryDifferentiablePublicOpHasACase) {
  const GateRegistry& registry = BuiltinGates();
  const std::set<std::string> covered = OpsWithCases();
  std::vector<std::string> missing;
  for (const std::string& op : registry.PublicOps()) {
    if (registry.Find(op)->differentiable() && !covered.count(op)) missing.push_back(op);
  }
  EXPECT_TRUE(missing.empty()) << "differentiable public ops without a finite-difference case in "
                                  "tests/engine/gates/gradient_coverage_test.cc: "
                               << Join(missing);
}

TEST(GradientCoverageTest, EveryCaseIsADifferentiablePublicOp) {
  const GateRegistry& registry = BuiltinGates();
  const std::vector<std::string> public_ops = registry.PublicOps();
  std::vector<std::string> stale;
  for (const std::string& op : OpsWithCases()) {
    const bool is_public = std::count(public_ops.begin(), public_ops.end(), op) > 0;
    if (!is_public || !registry.Find(op)->differentiable()) stale.push_back(op);
  }
  EXPECT_TRUE(stale.empty()) << "cases for ops that are not differentiable public ops (renamed, "
                                "removed, made internal or without a gradient): "
                             << Join(stale);
}

class GradientCoverageCaseTest : public ::testing::TestWithParam<CoverageCase> {};

TEST_P(GradientCoverageCaseTest, MatchesFiniteDifferences) {
  const GateCase& c = GetParam().check;
  ASSERT_EQ(c.tolerance, 1e-7) << "every case holds the seeds' tolerance";
  testing::ExpectGradientsMatchFiniteDifferences(c);
}

INSTANTIATE_TEST_SUITE_P(PublicOps, GradientCoverageCaseTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<CoverageCase>& info) {
                           return info.param.name;
                         });

// ---- the op reference ------------------------------------------------------------------------

// The problems with `op`'s entry in the op reference, one line each; empty if none.
std::vector<std::string> DocProblems(const Gate& gate) {
  const OpDoc doc = gate.doc();
  if (doc.summary.empty()) return {"no doc() (summary empty)"};
  std::vector<std::string> problems;
  if (doc.output.empty()) problems.push_back("no output description");
  if (doc.forward.empty()) problems.push_back("no forward formula");
  if (doc.gradient.empty()) problems.push_back("no gradient formula");
  if (!gate.differentiable() && doc.gradient != "none") {
    problems.push_back("not differentiable, so its gradient should read \"none\"");
  }
  if (gate.differentiable() && doc.gradient == "none") problems.push_back("gradient \"none\"");
  const Arity arity = gate.arity();
  const size_t expected = arity.max == Arity::kVariadic ? std::max(arity.min, 1) : arity.max;
  if (doc.inputs.size() != expected) {
    problems.push_back("documents " + std::to_string(doc.inputs.size()) + " inputs, expected " +
                       std::to_string(expected) + " from its arity");
  }
  for (const InputDoc& in : doc.inputs) {
    if (in.name.empty() || in.description.empty()) problems.push_back("an undescribed input");
  }
  for (const AttrSpec& spec : gate.attr_specs()) {
    if (spec.description.empty()) {
      problems.push_back("attribute '" + std::string(spec.name) + "' has no description");
    }
    if (spec.required && !spec.default_value.empty()) {
      problems.push_back("attribute '" + std::string(spec.name) +
                         "' is required, yet has a default");
    }
  }
  return problems;
}

TEST(OpReferenceCoverageTest, EveryPublicOpIsDocumented) {
  const GateRegistry& registry = BuiltinGates();
  for (const std::string& op : registry.PublicOps()) {
    for (const std::string& problem : DocProblems(*registry.Find(op))) {
      ADD_FAILURE() << op << ": " << problem << " (its gate's doc() and attr_specs(), which "
                    << "docs/ops.md is generated from)";
    }
  }
}

// "[1, 2]" or "[]" as a list of T; false if `in` holds anything else.
template <typename T>
bool ParseList(std::istringstream& in, AttrValue* value) {
  std::vector<T> values;
  char c = 0;
  if (!(in >> c) || c != '[') return false;
  in >> std::ws;
  if (in.peek() == ']') {
    in.get();
  } else {
    do {
      T v;
      if (!(in >> v >> c) || (c != ',' && c != ']')) return false;
      values.push_back(v);
    } while (c == ',');
  }
  *value = std::move(values);
  return (in >> std::ws).eof();
}

// `text` as a value of type `type`, written as AttrSpec::default_value says ("0.01", "[1, 1]",
// "sum"); false if it does not parse whole.
bool ParseAttr(AttrType type, std::string_view text, AttrValue* value) {
  std::istringstream in{std::string(text)};
  switch (type) {
    case AttrType::kString:
      *value = std::string(text);
      return true;
    case AttrType::kInts:
      return ParseList<int64_t>(in, value);
    case AttrType::kFloats:
      return ParseList<double>(in, value);
    case AttrType::kInt: {
      int64_t v = 0;
      in >> v;
      *value = v;
      break;
    }
    case AttrType::kFloat: {
      // strtod, unlike operator>>, reads "-inf" and "+inf" (clip's defaults).
      std::string word;
      in >> word;
      char* end = nullptr;
      *value = std::strtod(word.c_str(), &end);
      if (word.empty() || end != word.c_str() + word.size()) return false;
      break;
    }
  }
  return !in.fail() && (in >> std::ws).eof();
}

// The inputs of a case, drawn as the checker draws them (uniform in [low, high], then adjusted).
std::vector<Tensor> InputsOf(const GateCase& c) {
  std::mt19937_64 rng(c.seed);
  std::uniform_real_distribution<double> uniform(c.low, c.high);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    std::vector<double> values(static_cast<size_t>(c.shapes[i].num_elements()));
    for (double& v : values) {
      v = uniform(rng);
      if (c.adjust) v = c.adjust(static_cast<int>(i), v);
    }
    inputs.push_back(testing::T64(c.shapes[i], values));
  }
  return inputs;
}

// Runs case `c` with attribute `spec` absent and set to its documented default. Returns true if
// both ran (and checks they agree); false if both failed, as when the case's shapes need the
// attribute as the case sets it.
bool CheckDefault(const GateCase& c, const std::vector<Tensor>& inputs, const AttrSpec& spec) {
  AttrValue value;
  if (!ParseAttr(spec.type, spec.default_value, &value)) {
    ADD_FAILURE() << c.op << ": default \"" << spec.default_value << "\" of '" << spec.name
                  << "' is not a value of type " << AttrTypeName(spec.type);
    return false;
  }
  Attributes absent;
  for (const auto& [name, v] : c.attrs.all()) {
    if (name != spec.name) absent.Set(name, v);
  }
  Attributes given = absent;
  given.Set(std::string(spec.name), value);
  const StatusOr<Tensor> without = testing::RunGate(c.op, inputs, absent);
  const StatusOr<Tensor> with = testing::RunGate(c.op, inputs, given);
  EXPECT_EQ(without.ok(), with.ok())
      << c.op << " '" << spec.name << "': absent gives " << without.status().ToString()
      << ", the default " << with.status().ToString();
  if (!without.ok() || !with.ok()) return false;
  EXPECT_EQ(without->shape(), with->shape()) << c.op << " '" << spec.name << "'";
  EXPECT_EQ(without->ToDoubles(), with->ToDoubles())
      << c.op << ": an absent '" << spec.name << "' does not act as its documented default "
      << spec.default_value;
  return true;
}

// For every public op's attribute with a documented default: absent and set to that default, it
// gives the same output, in at least one of the op's cases.
TEST(OpReferenceCoverageTest, DocumentedDefaultsAreWhatAbsentAttributesMean) {
  const GateRegistry& registry = BuiltinGates();
  std::set<std::string> checked;  // "op.attribute"
  for (const CoverageCase& cc : Cases()) {
    const std::vector<Tensor> inputs = InputsOf(cc.check);
    for (const AttrSpec& spec : registry.Find(cc.check.op)->attr_specs()) {
      if (!spec.default_value.empty() && CheckDefault(cc.check, inputs, spec)) {
        checked.insert(cc.check.op + "." + std::string(spec.name));
      }
    }
  }
  for (const std::string& op : registry.PublicOps()) {
    for (const AttrSpec& spec : registry.Find(op)->attr_specs()) {
      const std::string key = op + "." + std::string(spec.name);
      EXPECT_TRUE(spec.default_value.empty() || checked.count(key))
          << key << ": its documented default " << spec.default_value
          << " is not checked by any case (add a case the attribute can be left out of)";
    }
  }
}

}  // namespace
}  // namespace backflow
