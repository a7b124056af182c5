// The ONNX form of slice and pad with their attribute defaults written out, and onnx's shape
// inference agreeing with their shape rules. (every_op_graph.h has them too: their values are
// checked against numpy there, and their round trip.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/gates/builtin.h"
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

  Graph graph_{BuiltinGates()};
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
