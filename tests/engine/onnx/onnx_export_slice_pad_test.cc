// The ONNX form of slice and pad. Their gates are built-in once they land; until then this test
// registers stand-ins with their attributes (slice: starts, ends, axes, steps, as ONNX's Slice;
// pad: pads as ONNX's, value) and shape rules, so the export form is checked either way, and
// onnx's shape inference checks the declared output shapes against ONNX's own.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "engine/gates/builtin.h"
#include "engine/ir/gate_registry.h"
#include "engine/onnx/onnx_export.h"
#include "tests/engine/onnx/onnx_export_checks.h"

namespace backflow {
namespace {

using ::testing::ElementsAre;
using testing::FindInitializer;
using testing::FormOf;
using testing::ParseChecked;
using testing::SignatureOf;
using testing::TensorText;

// Shape rules only (ONNX's Slice with positive steps, and Pad); never compiled.
class StandInGate : public Gate {
 public:
  explicit StandInGate(bool slice) : slice_(slice) {}
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override {
    if (slice_) {
      return {{.name = "starts", .type = AttrType::kInts, .required = true},
              {.name = "ends", .type = AttrType::kInts, .required = true},
              {.name = "axes", .type = AttrType::kInts},
              {.name = "steps", .type = AttrType::kInts}};
    }
    return {{.name = "pads", .type = AttrType::kInts, .required = true},
            {.name = "value", .type = AttrType::kFloat}};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    Shape y = ctx.inputs[0];
    if (!slice_) {
      const std::vector<int64_t> pads = ctx.attrs.GetInts("pads");
      for (int i = 0; i < y.rank(); ++i) {
        if (y.dim(i) != kBatchDim)
          y.dim(i) += pads[static_cast<size_t>(i)] + pads[static_cast<size_t>(i + y.rank())];
      }
      return y;
    }
    const std::vector<int64_t> starts = ctx.attrs.GetInts("starts");
    const std::vector<int64_t> ends = ctx.attrs.GetInts("ends");
    const std::vector<int64_t> axes = ctx.attrs.GetInts("axes");
    const std::vector<int64_t> steps = ctx.attrs.GetInts("steps");
    for (size_t k = 0; k < starts.size(); ++k) {
      const int axis = static_cast<int>(axes.empty() ? static_cast<int64_t>(k) : axes[k]);
      const int64_t n = y.dim(axis);
      auto clamp = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t{0}, n); };
      const int64_t step = steps.empty() ? 1 : steps[k];
      y.dim(axis) = std::max<int64_t>(0, (clamp(ends[k]) - clamp(starts[k]) + step - 1) / step);
    }
    return y;
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext&) const override {
    return InternalError("a stand-in");
  }

 private:
  bool slice_;
};

const GateRegistry& Gates() {
  static const GateRegistry* gates = [] {
    auto* r = new GateRegistry;
    RegisterBuiltinGates(*r);
    if (r->Find("slice") == nullptr)
      (void)r->Register("slice", std::make_unique<StandInGate>(true));
    if (r->Find("pad") == nullptr) (void)r->Register("pad", std::make_unique<StandInGate>(false));
    return r;
  }();
  return *gates;
}

class OnnxExportSlicePadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ValueId x = *graph_.AddPlaceholder("x", Shape{kBatchDim, 4, 10});
    const ValueId z = *graph_.AddPlaceholder("z", Shape{3, 5});
    const auto add = [&](const std::string& name, std::string_view op, Attributes attrs,
                         ValueId in) {
      StatusOr<ValueId> id = graph_.AddNode(name, op, {in}, std::move(attrs));
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      graph_.AddOutput(*id);
    };
    using Ints = std::vector<int64_t>;
    add("cols", "slice",
        {{"starts", Ints{1, -8}},
         {"ends", Ints{3, 9}},
         {"axes", Ints{1, 2}},
         {"steps", Ints{1, 3}}},
        x);
    add("head", "slice", {{"starts", Ints{0, 1}}, {"ends", Ints{2, 5}}}, z);  // axes 0, 1
    add("padded", "pad", {{"pads", Ints{0, 1, 2, 0, 3, 4}}, {"value", 0.5}}, x);
    add("zero_padded", "pad", {{"pads", Ints{0, 0, 1, 0, 0, 1}}}, x);
    StatusOr<std::string> bytes = ExportOnnx(graph_, {});
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    model_ = ParseChecked(*bytes);
  }
  std::string Initializer(const std::string& name) const {
    const onnx::TensorProto* t = FindInitializer(model_, name);
    return t == nullptr ? "none" : TensorText(*t);
  }

  Graph graph_{Gates()};
  onnx::ModelProto model_;
};

// starts, ends, axes and steps are int64 initializers, axes and steps written out when absent.
TEST_F(OnnxExportSlicePadTest, Slice) {
  EXPECT_THAT(FormOf(model_, "cols"),
              ElementsAre("Slice(x, cols.starts, cols.ends, cols.axes, cols.steps -> cols)"));
  EXPECT_EQ(Initializer("cols.starts"), "INT64[2] 1 -8");
  EXPECT_EQ(Initializer("cols.ends"), "INT64[2] 3 9");
  EXPECT_EQ(Initializer("cols.axes"), "INT64[2] 1 2");
  EXPECT_EQ(Initializer("cols.steps"), "INT64[2] 1 3");
  EXPECT_THAT(FormOf(model_, "head"),
              ElementsAre("Slice(z, head.starts, head.ends, head.axes, head.steps -> head)"));
  EXPECT_EQ(Initializer("head.axes"), "INT64[2] 0 1");
  EXPECT_EQ(Initializer("head.steps"), "INT64[2] 1 1");
}

// pads in ONNX's order (all begins, then all ends); the value a Constant of the model's dtype.
TEST_F(OnnxExportSlicePadTest, Pad) {
  EXPECT_THAT(FormOf(model_, "padded"),
              ElementsAre("Constant(-> padded.value) value=FLOAT[] 0.5",
                          "Pad(x, padded.pads, padded.value -> padded) mode=\"constant\""));
  EXPECT_EQ(Initializer("padded.pads"), "INT64[6] 0 1 2 0 3 4");
  EXPECT_THAT(FormOf(model_, "zero_padded"),
              ElementsAre("Constant(-> zero_padded.value) value=FLOAT[] 0",
                          "Pad(x, zero_padded.pads, zero_padded.value -> zero_padded) "
                          "mode=\"constant\""));
}

// onnx's shape inference agreed with these (ParseChecked); they are what ONNX's Slice and Pad
// make of [N, 4, 10].
TEST_F(OnnxExportSlicePadTest, Shapes) {
  EXPECT_THAT(SignatureOf(model_.graph().output()),
              ElementsAre("cols: FLOAT[N, 2, 3]", "head: FLOAT[2, 4]", "padded: FLOAT[N, 8, 16]",
                          "zero_padded: FLOAT[N, 4, 12]"));
}

}  // namespace
}  // namespace backflow
