// The ONNX form of every op ExportOnnx maps, on one hand-built graph that uses each op and
// attribute variant: the exact nodes, inputs, attributes and helper initializers written (what
// ImportOnnx maps back), and onnx's strict shape inference agreeing with backflow's shapes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/gates/builtin.h"
#include "engine/onnx/onnx_export.h"
#include "tests/engine/onnx/every_op_graph.h"
#include "tests/engine/onnx/onnx_export_checks.h"

namespace backflow {
namespace {

using testing::Builder;
using ::testing::ElementsAre;
using testing::EveryOp;
using testing::FindConstant;
using testing::FindInitializer;
using testing::FormOf;
using testing::InitializerValues;
using testing::ParseChecked;
using testing::SignatureOf;

class OnnxExportOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<std::string> bytes = ExportOnnx(b_.graph, b_.values);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    model_ = ParseChecked(*bytes);
  }
  std::vector<std::string> Form(const std::string& node) const { return FormOf(model_, node); }
  // An initializer: "INT64[3] 0 4 -1".
  std::string Initializer(const std::string& name) const {
    const onnx::TensorProto* t = FindInitializer(model_, name);
    return t == nullptr ? "none" : testing::TensorText(*t);
  }

  Builder b_ = EveryOp();
  onnx::ModelProto model_;
};

TEST_F(OnnxExportOpsTest, InputsAndOutputs) {
  EXPECT_THAT(SignatureOf(model_.graph().input()),
              ElementsAre("x: FLOAT[N, 3, 9, 9]", "ids: INT32[N, 5]"));
  const std::vector<std::string> outputs = SignatureOf(model_.graph().output());
  ASSERT_EQ(outputs.size(), static_cast<size_t>(b_.graph.num_nodes()));
  // onnx's shape inference checked each declared output shape against its own.
  EXPECT_EQ(outputs[0], "conv: FLOAT[N, 4, 4, 8]");
  EXPECT_THAT(outputs, ::testing::Contains("maxpool_ceil: FLOAT[N, 4, 2, 6]"));
  EXPECT_THAT(outputs, ::testing::Contains("avgpool: FLOAT[N, 4, 5, 5]"));
  EXPECT_THAT(outputs, ::testing::Contains("mm_ta: FLOAT[4, 4]"));
  EXPECT_THAT(outputs, ::testing::Contains("reversed: FLOAT[6, 4, N]"));
  EXPECT_THAT(outputs, ::testing::Contains("mean_all: FLOAT[]"));
  EXPECT_THAT(outputs, ::testing::Contains("emb: FLOAT[N, 5, 3]"));
}

// backflow's [pt, pl, pb, pr] is ONNX's [begin H, begin W, end H, end W]; [ph, pw] is both
// sides alike.
TEST_F(OnnxExportOpsTest, Conv2d) {
  EXPECT_THAT(Form("conv"), ElementsAre("Conv(x, cw, cb -> conv) dilations=[1, 2] group=1 "
                                        "kernel_shape=[3, 3] pads=[1, 2, 0, 1] strides=[2, 1]"));
  EXPECT_THAT(Form("dw"), ElementsAre("Conv(conv, dw_w -> dw) dilations=[1, 1] group=4 "
                                      "kernel_shape=[3, 3] pads=[1, 1, 1, 1] strides=[1, 1]"));
}

TEST_F(OnnxExportOpsTest, BatchNormMomentumIsOneMinusOurs) {
  EXPECT_THAT(Form("bn"), ElementsAre("BatchNormalization(dw, bw, bb, rm, rv -> bn) "
                                      "epsilon=0.001 momentum=0.75"));
  EXPECT_THAT(Form("bn_plain"),
              ElementsAre("Constant(-> bn_plain.scale) value=FLOAT[4] 1 1 1 1",
                          "Constant(-> bn_plain.bias) value=FLOAT[4] 0 0 0 0",
                          "BatchNormalization(conv, bn_plain.scale, bn_plain.bias, rm2, rv2 -> "
                          "bn_plain) epsilon=1e-05 momentum=0.9"));
  // Running statistics are initializers (ImportOnnx makes them running state); the ones and
  // zeros are not: imported, they must not become trained parameters.
  EXPECT_NE(FindInitializer(model_, "rm2"), nullptr);
  EXPECT_EQ(FindInitializer(model_, "bn_plain.scale"), nullptr);
}

TEST_F(OnnxExportOpsTest, UnaryAndBinary) {
  EXPECT_THAT(Form("relu"), ElementsAre("Relu(bn -> relu)"));
  EXPECT_THAT(Form("sig"), ElementsAre("Sigmoid(bn -> sig)"));
  EXPECT_THAT(Form("tanh"), ElementsAre("Tanh(bn -> tanh)"));
  EXPECT_THAT(Form("erf"), ElementsAre("Erf(bn -> erf)"));
  EXPECT_THAT(Form("exp"), ElementsAre("Exp(bn -> exp)"));
  EXPECT_THAT(Form("neg"), ElementsAre("Neg(bn -> neg)"));
  EXPECT_THAT(Form("reciprocal"), ElementsAre("Reciprocal(sig -> reciprocal)"));
  EXPECT_THAT(Form("log"), ElementsAre("Log(sig -> log)"));
  EXPECT_THAT(Form("sqrt"), ElementsAre("Sqrt(sig -> sqrt)"));
  EXPECT_THAT(Form("leaky"), ElementsAre("LeakyRelu(bn -> leaky) alpha=0.2"));
  EXPECT_THAT(Form("add"), ElementsAre("Add(relu, sig -> add)"));
  EXPECT_THAT(Form("sub"), ElementsAre("Sub(relu, sig -> sub)"));
  EXPECT_THAT(Form("mul"), ElementsAre("Mul(relu, sig -> mul)"));
  EXPECT_THAT(Form("div"), ElementsAre("Div(relu, sig -> div)"));
  EXPECT_THAT(Form("pow"), ElementsAre("Pow(relu, sig -> pow)"));
  EXPECT_THAT(Form("max"), ElementsAre("Max(relu, sig -> max)"));
  EXPECT_THAT(Form("min"), ElementsAre("Min(relu, sig -> min)"));
  EXPECT_THAT(Form("plus_k"), ElementsAre("Add(relu, k -> plus_k)"));
  // A backflow constant is a Constant node, not a (trainable) initializer.
  EXPECT_THAT(Form("k"), ElementsAre("Constant(-> k) value=FLOAT[4, 1, 1] 1 2 3 4"));
  EXPECT_EQ(FindInitializer(model_, "k"), nullptr);
}

TEST_F(OnnxExportOpsTest, ScalarOpsReadScalarConstants) {
  EXPECT_THAT(Form("add_scalar"), ElementsAre("Constant(-> add_scalar.c) value=FLOAT[] 1.5",
                                              "Add(bn, add_scalar.c -> add_scalar)"));
  EXPECT_THAT(Form("mul_scalar"), ElementsAre("Constant(-> mul_scalar.a) value=FLOAT[] -2",
                                              "Mul(bn, mul_scalar.a -> mul_scalar)"));
  EXPECT_THAT(Form("square"), ElementsAre("Constant(-> square.exponent) value=FLOAT[] 2",
                                          "Pow(bn, square.exponent -> square)"));
  EXPECT_THAT(Form("dropout"), ElementsAre("Constant(-> dropout.ratio) value=FLOAT[] 0.3",
                                           "Dropout(relu, dropout.ratio -> dropout)"));
}

// Absent bounds are absent inputs.
TEST_F(OnnxExportOpsTest, Clip) {
  EXPECT_THAT(Form("clip"), ElementsAre("Constant(-> clip.min) value=FLOAT[] 0",
                                        "Constant(-> clip.max) value=FLOAT[] 6",
                                        "Clip(bn, clip.min, clip.max -> clip)"));
  EXPECT_THAT(Form("clip_lo"), ElementsAre("Constant(-> clip_lo.min) value=FLOAT[] -1",
                                           "Clip(bn, clip_lo.min -> clip_lo)"));
  EXPECT_THAT(Form("clip_hi"), ElementsAre("Constant(-> clip_hi.max) value=FLOAT[] 1",
                                           "Clip(bn, , clip_hi.max -> clip_hi)"));
}

TEST_F(OnnxExportOpsTest, GeluAsTorchWritesIt) {
  EXPECT_THAT(
      Form("gelu"),
      ElementsAre("Constant(-> gelu.sqrt2) value=FLOAT[] 1.41421",
                  "Div(bn, gelu.sqrt2 -> gelu.div)", "Erf(gelu.div -> gelu.erf)",
                  "Constant(-> gelu.one) value=FLOAT[] 1", "Add(gelu.erf, gelu.one -> gelu.add)",
                  "Mul(bn, gelu.add -> gelu.mul)", "Constant(-> gelu.half) value=FLOAT[] 0.5",
                  "Mul(gelu.mul, gelu.half -> gelu)"));
  EXPECT_EQ(InitializerValues(*FindConstant(model_, "gelu.sqrt2"))[0],
            static_cast<double>(static_cast<float>(std::sqrt(2.0))));
  EXPECT_THAT(
      Form("gelu_tanh"),
      ElementsAre("Mul(bn, bn -> gelu_tanh.square)", "Mul(bn, gelu_tanh.square -> gelu_tanh.cube)",
                  "Constant(-> gelu_tanh.kappa) value=FLOAT[] 0.044715",
                  "Mul(gelu_tanh.cube, gelu_tanh.kappa -> gelu_tanh.kappa_cube)",
                  "Add(bn, gelu_tanh.kappa_cube -> gelu_tanh.sum)",
                  "Constant(-> gelu_tanh.beta) value=FLOAT[] 0.797885",
                  "Mul(gelu_tanh.sum, gelu_tanh.beta -> gelu_tanh.inner)",
                  "Tanh(gelu_tanh.inner -> gelu_tanh.tanh)",
                  "Constant(-> gelu_tanh.one) value=FLOAT[] 1",
                  "Add(gelu_tanh.tanh, gelu_tanh.one -> gelu_tanh.add)",
                  "Mul(bn, gelu_tanh.add -> gelu_tanh.mul)",
                  "Constant(-> gelu_tanh.half) value=FLOAT[] 0.5",
                  "Mul(gelu_tanh.mul, gelu_tanh.half -> gelu_tanh)"));
  EXPECT_EQ(InitializerValues(*FindConstant(model_, "gelu_tanh.beta"))[0],
            static_cast<double>(static_cast<float>(std::sqrt(2.0 / M_PI))));
}

// Strides default to the kernel; MaxPool has dilations, AveragePool count_include_pad.
TEST_F(OnnxExportOpsTest, Pooling) {
  EXPECT_THAT(Form("maxpool"),
              ElementsAre("MaxPool(relu -> maxpool) ceil_mode=0 kernel_shape=[2, 2] "
                          "pads=[0, 0, 0, 0] strides=[2, 2] dilations=[1, 1]"));
  EXPECT_THAT(Form("maxpool_ceil"),
              ElementsAre("MaxPool(relu -> maxpool_ceil) ceil_mode=1 kernel_shape=[3, 3] "
                          "pads=[1, 1, 0, 1] strides=[2, 1] dilations=[1, 2]"));
  EXPECT_THAT(Form("avgpool"),
              ElementsAre("AveragePool(relu -> avgpool) ceil_mode=1 kernel_shape=[2, 3] "
                          "pads=[1, 1, 1, 1] strides=[1, 2] count_include_pad=0"));
  EXPECT_THAT(Form("gap"), ElementsAre("GlobalAveragePool(relu -> gap)"));
  // PyTorch's ceil_mode rule dropped the window that rounding up added: the same windows are
  // ceil_mode 0 in ONNX (Note [ceil_mode]), whose shape inference checked [N, 4, 2, 3].
  EXPECT_THAT(Form("max_pool2d_dropped"),
              ElementsAre("MaxPool(relu -> max_pool2d_dropped) ceil_mode=0 kernel_shape=[2, 2] "
                          "pads=[1, 1, 1, 1] strides=[3, 3] dilations=[1, 1]"));
  EXPECT_THAT(Form("avg_pool2d_dropped"),
              ElementsAre("AveragePool(relu -> avg_pool2d_dropped) ceil_mode=0 "
                          "kernel_shape=[2, 2] pads=[1, 1, 1, 1] strides=[3, 3] "
                          "count_include_pad=1"));
  EXPECT_THAT(SignatureOf(model_.graph().output()),
              ::testing::Contains("max_pool2d_dropped: FLOAT[N, 4, 2, 3]"));
}

// Rank 2: Gemm (C only with a bias); higher: MatMul, then Add; matmul's flags are Gemm's
// transA/transB in rank 2 and Transposes of the last two axes otherwise.
TEST_F(OnnxExportOpsTest, LinearAndMatMul) {
  EXPECT_THAT(Form("fc"), ElementsAre("Gemm(flat, lw, lb -> fc) alpha=1 beta=1 transA=0 transB=0"));
  EXPECT_THAT(Form("fc_nobias"),
              ElementsAre("Gemm(flat, lw -> fc_nobias) alpha=1 beta=1 transA=0 transB=0"));
  EXPECT_THAT(Form("fc3"),
              ElementsAre("MatMul(seq, lw3 -> fc3.matmul)", "Add(fc3.matmul, lb3 -> fc3)"));
  EXPECT_THAT(Form("fc3_nobias"), ElementsAre("MatMul(seq, lw3b -> fc3_nobias)"));
  EXPECT_THAT(Form("mm_tb"),
              ElementsAre("Gemm(flat, mw -> mm_tb) alpha=1 beta=1 transA=0 transB=1"));
  EXPECT_THAT(Form("mm_ta"),
              ElementsAre("Gemm(flat, flat -> mm_ta) alpha=1 beta=1 transA=1 transB=0"));
  EXPECT_THAT(Form("bmm_tb"), ElementsAre("Transpose(fc3 -> bmm_tb.b_t) perm=[0, 2, 1]",
                                          "MatMul(fc3, bmm_tb.b_t -> bmm_tb)"));
  EXPECT_THAT(Form("bmm_ta"), ElementsAre("Transpose(fc3 -> bmm_ta.a_t) perm=[0, 2, 1]",
                                          "MatMul(bmm_ta.a_t, fc3 -> bmm_ta)"));
  EXPECT_THAT(Form("bmm"), ElementsAre("MatMul(fc3, mw3 -> bmm)"));
}

TEST_F(OnnxExportOpsTest, ShapeOps) {
  EXPECT_THAT(Form("flat"), ElementsAre("Flatten(gap -> flat) axis=1"));
  EXPECT_THAT(Form("seq"), ElementsAre("Reshape(relu, seq.shape -> seq)"));
  EXPECT_EQ(Initializer("seq.shape"), "INT64[3] 0 4 -1");
  EXPECT_THAT(Form("perm"), ElementsAre("Transpose(relu -> perm) perm=[0, 2, 3, 1]"));
  EXPECT_THAT(Form("reversed"), ElementsAre("Transpose(fc3 -> reversed) perm=[2, 1, 0]"));
  EXPECT_THAT(Form("cat"), ElementsAre("Concat(relu, bn -> cat) axis=1"));
  EXPECT_THAT(Form("softmax"), ElementsAre("Softmax(fc -> softmax) axis=-1"));
  EXPECT_THAT(Form("log_softmax"), ElementsAre("LogSoftmax(fc3 -> log_softmax) axis=1"));
  EXPECT_THAT(Form("emb"), ElementsAre("Gather(table, ids -> emb) axis=0"));
}

// int64 initializers for Slice's starts, ends, axes and steps and Pad's pads; Pad's value a
// Constant. (onnx_export_slice_pad_test.cc has the defaults written out.)
TEST_F(OnnxExportOpsTest, SliceAndPad) {
  EXPECT_THAT(
      Form("slice"),
      ElementsAre("Slice(relu, slice.starts, slice.ends, slice.axes, slice.steps -> slice)"));
  EXPECT_EQ(Initializer("slice.starts"), "INT64[2] 1 -7");
  EXPECT_EQ(Initializer("slice.ends"), "INT64[2] 3 8");
  EXPECT_EQ(Initializer("slice.axes"), "INT64[2] 1 3");
  EXPECT_EQ(Initializer("slice.steps"), "INT64[2] 1 2");
  EXPECT_EQ(Initializer("slice_back.steps"), "INT64[1] -2");
  EXPECT_THAT(Form("pad"), ElementsAre("Constant(-> pad.value) value=FLOAT[] 0.5",
                                       "Pad(relu, pad.pads, pad.value -> pad) mode=\"constant\""));
  EXPECT_EQ(Initializer("pad.pads"), "INT64[8] 0 0 1 2 0 0 0 1");
  EXPECT_EQ(Initializer("crop.pads"), "INT64[8] 0 0 -1 0 0 0 0 -2");
  const std::vector<std::string> outputs = SignatureOf(model_.graph().output());
  EXPECT_THAT(outputs, ::testing::Contains("slice: FLOAT[N, 2, 4, 4]"));
  EXPECT_THAT(outputs, ::testing::Contains("slice_back: FLOAT[N, 4, 4, 3]"));
  EXPECT_THAT(outputs, ::testing::Contains("pad: FLOAT[N, 4, 5, 11]"));
  EXPECT_THAT(outputs, ::testing::Contains("crop: FLOAT[N, 4, 3, 6]"));
}

// ReduceMean's axes are an attribute in opset 14, ReduceSum's an input; all axes: none given.
TEST_F(OnnxExportOpsTest, Reductions) {
  EXPECT_THAT(Form("mean_hw"), ElementsAre("ReduceMean(relu -> mean_hw) axes=[2, 3] keepdims=1"));
  EXPECT_THAT(Form("mean_all"), ElementsAre("ReduceMean(relu -> mean_all) keepdims=0"));
  EXPECT_THAT(Form("sum_c"), ElementsAre("ReduceSum(relu, sum_c.axes -> sum_c) keepdims=0"));
  EXPECT_EQ(Initializer("sum_c.axes"), "INT64[1] 1");
  EXPECT_THAT(Form("sum_all"), ElementsAre("ReduceSum(relu -> sum_all) keepdims=0"));
}

TEST_F(OnnxExportOpsTest, LayerNormAsTorchWritesIt) {
  EXPECT_THAT(Form("ln"),
              ElementsAre("ReduceMean(fc3 -> ln.mean) axes=[-1] keepdims=1",
                          "Sub(fc3, ln.mean -> ln.centered)", "Constant(-> ln.two) value=FLOAT[] 2",
                          "Pow(ln.centered, ln.two -> ln.square)",
                          "ReduceMean(ln.square -> ln.var) axes=[-1] keepdims=1",
                          "Constant(-> ln.epsilon) value=FLOAT[] 0.0001",
                          "Add(ln.var, ln.epsilon -> ln.var_eps)", "Sqrt(ln.var_eps -> ln.std)",
                          "Div(ln.centered, ln.std -> ln.normalized)",
                          "Mul(ln.normalized, lnw -> ln.scaled)", "Add(ln.scaled, lnb -> ln)"));
  EXPECT_THAT(Form("ln_plain"),
              ElementsAre("ReduceMean(seq -> ln_plain.mean) axes=[-2, -1] keepdims=1",
                          "Sub(seq, ln_plain.mean -> ln_plain.centered)",
                          "Constant(-> ln_plain.two) value=FLOAT[] 2",
                          "Pow(ln_plain.centered, ln_plain.two -> ln_plain.square)",
                          "ReduceMean(ln_plain.square -> ln_plain.var) axes=[-2, -1] keepdims=1",
                          "Constant(-> ln_plain.epsilon) value=FLOAT[] 1e-05",
                          "Add(ln_plain.var, ln_plain.epsilon -> ln_plain.var_eps)",
                          "Sqrt(ln_plain.var_eps -> ln_plain.std)",
                          "Div(ln_plain.centered, ln_plain.std -> ln_plain)"));
}

// Node names are their outputs' names, so each is unique; a helper name that a backflow value
// already has gets a suffix.
TEST_F(OnnxExportOpsTest, NamesAreUnique) {
  std::set<std::string> names;
  for (const onnx::NodeProto& node : model_.graph().node()) {
    EXPECT_EQ(node.name(), node.output(0));
    EXPECT_TRUE(names.insert(node.name()).second) << node.name();
  }
  for (const onnx::TensorProto& t : model_.graph().initializer()) {
    EXPECT_TRUE(names.insert(t.name()).second) << t.name();
  }
}

// ImportOnnx trains float initializers: they are exactly the parameters and running state, each
// holding its value bit for bit.
TEST_F(OnnxExportOpsTest, FloatInitializersAreTheParametersAndState) {
  std::set<std::string> floats;
  for (const onnx::TensorProto& t : model_.graph().initializer()) {
    if (t.data_type() != onnx::TensorProto_DataType_INT64) floats.insert(t.name());
    const auto value = b_.values.find(t.name());
    if (value == b_.values.end()) continue;
    EXPECT_EQ(t.raw_data(), std::string(reinterpret_cast<const char*>(value->second.raw()),
                                        value->second.byte_size()))
        << t.name();
  }
  std::set<std::string> expected;
  for (const auto& [name, tensor] : b_.values) expected.insert(name);
  EXPECT_EQ(floats, expected);
}

TEST(OnnxExportNamesTest, HelperNamesAvoidBackflowNames) {
  Builder b;
  const ValueId x = b.Placeholder("x", Shape{kBatchDim, 3});
  b.Placeholder("y.c", Shape{kBatchDim, 3});  // the name add_scalar's helper would take
  (void)b.graph.AddNode("y", "add_scalar", {x}, {{"c", 2.0}});
  b.graph.AddOutput(*b.graph.Find("y"));
  StatusOr<std::string> bytes = ExportOnnx(b.graph, b.values);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const onnx::ModelProto model = ParseChecked(*bytes);
  EXPECT_THAT(FormOf(model, "y"),
              ElementsAre("Constant(-> y.c_1) value=FLOAT[] 2", "Add(x, y.c_1 -> y)"));
}

// A float64 model's helper constants are float64 too (ONNX wants one type per operator);
// the dropout ratio is float32 in every model.
TEST(OnnxExportDTypeTest, Float64Helpers) {
  Builder b;
  const ValueId x = b.Placeholder("x", Shape{kBatchDim, 3});
  const ValueId w = b.Parameter("w", Shape{3});
  b.values["w"] = b.values["w"].CastTo(DType::kFloat64);
  const ValueId y = b.Node("y", "layer_norm", {x, w, b.Parameter("c", Shape{3})});
  b.values["c"] = b.values["c"].CastTo(DType::kFloat64);
  b.Node("z", "dropout", {y}, {{"p", 0.125}});
  StatusOr<std::string> bytes = ExportOnnx(b.graph, b.values);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const onnx::ModelProto model = ParseChecked(*bytes);
  EXPECT_THAT(SignatureOf(model.graph().input()), ElementsAre("x: DOUBLE[N, 3]"));
  EXPECT_EQ(FindConstant(model, "y.epsilon")->data_type(), onnx::TensorProto_DataType_DOUBLE);
  EXPECT_EQ(InitializerValues(*FindConstant(model, "y.epsilon"))[0], 1e-5);
  EXPECT_EQ(FindConstant(model, "z.ratio")->data_type(), onnx::TensorProto_DataType_FLOAT);
}

}  // namespace
}  // namespace backflow
