// ImportOnnx on small hand-built ONNX models: the translation of each pattern, and every error
// a client can provoke. PyTorch-exported networks are checked against PyTorch in
// onnx_parity_test.cc.
#include "engine/onnx/onnx_import.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/api/import.h"
#include "onnx/onnx_pb.h"

namespace backflow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Builds an ONNX model by hand.
class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 14) {
    model_.set_ir_version(7);
    model_.set_producer_name("test");
    auto* id = model_.add_opset_import();
    id->set_version(opset);
  }

  // dims: a value > 0 is static; 0 is the symbolic "N" (or `param` if given).
  void Input(const std::string& name, std::vector<int64_t> dims,
             int elem = onnx::TensorProto::FLOAT, const std::string& param = "N") {
    auto* in = graph()->add_input();
    in->set_name(name);
    auto* t = in->mutable_type()->mutable_tensor_type();
    t->set_elem_type(elem);
    for (int64_t d : dims) {
      auto* dim = t->mutable_shape()->add_dim();
      if (d > 0) {
        dim->set_dim_value(d);
      } else {
        dim->set_dim_param(param);
      }
    }
  }
  void Output(const std::string& name) { graph()->add_output()->set_name(name); }

  onnx::TensorProto* Floats(const std::string& name, std::vector<int64_t> dims,
                            std::vector<float> values) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
    return t;
  }
  void Ints(const std::string& name, std::vector<int64_t> values, bool scalar = false) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    if (!scalar) t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }

  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> inputs,
                        std::vector<std::string> outputs) {
    auto* n = graph()->add_node();
    n->set_op_type(op);
    n->set_name(outputs.empty() ? op : outputs[0]);
    for (auto& i : inputs) n->add_input(i);
    for (auto& o : outputs) n->add_output(o);
    return n;
  }
  static void IntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void FloatAttr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void IntsAttr(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  std::string Bytes() const { return model_.SerializeAsString(); }
  onnx::GraphProto* graph() { return model_.mutable_graph(); }
  onnx::ModelProto& model() { return model_; }

 private:
  onnx::ModelProto model_;
};

const backflow::v1::Node* FindNode(const backflow::v1::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

std::vector<int64_t> IntsOf(const backflow::v1::Node& n, const std::string& attr) {
  const auto& list = n.attrs().at(attr).ints().values();
  return std::vector<int64_t>(list.begin(), list.end());
}

// y = x W^T + b, as torch exports nn.Linear(3, 2).
ModelBuilder LinearModel() {
  ModelBuilder m;
  m.Input("x", {0, 3});
  m.Floats("fc.weight", {2, 3}, {1, 2, 3, 4, 5, 6});
  m.Floats("fc.bias", {2}, {0.5f, -0.5f});
  auto* gemm = m.Node("Gemm", {"x", "fc.weight", "fc.bias"}, {"y"});
  ModelBuilder::IntAttr(gemm, "transB", 1);
  m.Output("y");
  return m;
}

TEST(OnnxImportTest, GemmWithTransposedWeightsIsMatmulPlusBias) {
  ModelBuilder m = LinearModel();
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->opset, 14);
  EXPECT_EQ(r->producer, "test");
  const auto* mm = FindNode(r->graph, "y/matmul");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->op(), "matmul");
  EXPECT_EQ(mm->attrs().at("transpose_b").i(), 1);
  const auto* add = FindNode(r->graph, "y");
  ASSERT_NE(add, nullptr);
  EXPECT_EQ(add->op(), "add");
  ASSERT_EQ(r->graph.parameters_size(), 2);
  EXPECT_EQ(r->graph.parameters(0).name(), "fc.weight");
  const Tensor& w = r->values.at("fc.weight");
  EXPECT_EQ(w.shape(), Shape({2, 3}));
  EXPECT_EQ(w.data<float>()[5], 6.0f);
  EXPECT_THAT(std::vector<int64_t>(r->graph.placeholders(0).shape().begin(),
                                   r->graph.placeholders(0).shape().end()),
              ElementsAre(-1, 3));
  EXPECT_TRUE(ImportGraph(r->graph).ok());
}

TEST(OnnxImportTest, PlainGemmIsLinear) {
  ModelBuilder m;
  m.Input("x", {0, 3});
  m.Floats("w", {3, 2}, {1, 2, 3, 4, 5, 6});
  m.Floats("b", {2}, {0, 0});
  m.Node("Gemm", {"x", "w", "b"}, {"y"});
  m.Output("y");
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->graph.nodes_size(), 1);
  EXPECT_EQ(r->graph.nodes(0).op(), "linear");
}

// x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
TEST(OnnxImportTest, ViewOnTheBatchFoldsToAReshape) {
  ModelBuilder m;
  m.Input("x", {0, 2, 3});
  m.Node("Shape", {"x"}, {"s"});
  m.Ints("zero", {0}, true);
  m.Node("Gather", {"s", "zero"}, {"n"});
  m.Ints("axes0", {0});
  m.Node("Unsqueeze", {"n", "axes0"}, {"n1"});
  m.Ints("minus1", {-1});
  auto* cat = m.Node("Concat", {"n1", "minus1"}, {"target"});
  ModelBuilder::IntAttr(cat, "axis", 0);
  m.Node("Reshape", {"x", "target"}, {"y"});
  m.Output("y");
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->graph.nodes_size(), 1);
  EXPECT_EQ(r->graph.nodes(0).op(), "reshape");
  EXPECT_THAT(IntsOf(r->graph.nodes(0), "shape"), ElementsAre(-1, 6));
}

// Multi-head attention's [N, S, E] -> [N * heads, S, E / heads].
ModelBuilder HeadsModel(int64_t divisor) {
  ModelBuilder m;
  m.Input("x", {0, 6, 4});
  m.Node("Shape", {"x"}, {"s"});
  m.Ints("zero", {0}, true);
  m.Node("Gather", {"s", "zero"}, {"n"});
  m.Ints("k", {divisor}, true);
  m.Node(divisor == 2 ? "Mul" : "Div", {"n", "k"}, {"nh"});
  m.Ints("axes0", {0});
  m.Node("Unsqueeze", {"nh", "axes0"}, {"nh1"});
  m.Ints("rest", {6, -1});
  auto* cat = m.Node("Concat", {"nh1", "rest"}, {"target"});
  ModelBuilder::IntAttr(cat, "axis", 0);
  m.Node("Reshape", {"x", "target"}, {"y"});
  m.Output("y");
  return m;
}

TEST(OnnxImportTest, BatchMultipleBecomesTheInferredDimension) {
  StatusOr<OnnxImported> r = ImportOnnx(HeadsModel(2).Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(IntsOf(r->graph.nodes(0), "shape"), ElementsAre(-1, 6, 2));
}

TEST(OnnxImportTest, InexactDivisionOfTheBatchIsRefused) {
  StatusOr<OnnxImported> r = ImportOnnx(HeadsModel(3).Bytes(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("ONNX node 'nh' (Div, opset 14)"));
  EXPECT_THAT(r.status().message(), HasSubstr("divided inexactly"));
}

TEST(OnnxImportTest, BatchNormalizationKeepsRunningStateAndConvertsMomentum) {
  ModelBuilder m;
  m.Input("x", {0, 2, 3, 3});
  m.Floats("bn.weight", {2}, {1, 2});
  m.Floats("bn.bias", {2}, {0, 1});
  m.Floats("bn.running_mean", {2}, {0.5f, 0.25f});
  m.Floats("bn.running_var", {2}, {1, 4});
  auto* bn =
      m.Node("BatchNormalization",
             {"x", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}, {"y", "rm", "rv"});
  ModelBuilder::FloatAttr(bn, "momentum", 0.9f);
  ModelBuilder::IntAttr(bn, "training_mode", 1);
  m.Output("y");
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->graph.states_size(), 2);
  EXPECT_EQ(r->graph.states(0).name(), "bn.running_mean");
  EXPECT_EQ(r->graph.parameters_size(), 2);
  const auto& node = r->graph.nodes(0);
  EXPECT_EQ(node.op(), "batch_norm");
  EXPECT_THAT(std::vector<std::string>(node.inputs().begin(), node.inputs().end()),
              ElementsAre("x", "bn.running_mean", "bn.running_var", "bn.weight", "bn.bias"));
  EXPECT_NEAR(node.attrs().at("momentum").f(), 0.1, 1e-7);
  EXPECT_EQ(r->values.at("bn.running_var").data<float>()[1], 4.0f);

  m.Node("Identity", {"rm"}, {"leak"});
  m.Output("leak");
  r = ImportOnnx(m.Bytes(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("the running mean output (output 1, 'rm') is read"));
}

// torch's F.avg_pool2d(x, 2, padding=1): a zero Pad, then a pool without pads.
TEST(OnnxImportTest, ZeroPadBeforeAveragePoolBecomesItsPadding) {
  ModelBuilder m;
  m.Input("x", {0, 1, 4, 4});
  m.Ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
  m.Node("Pad", {"x", "pads"}, {"p"});
  auto* pool = m.Node("AveragePool", {"p"}, {"y"});
  ModelBuilder::IntsAttr(pool, "kernel_shape", {2, 2});
  ModelBuilder::IntsAttr(pool, "strides", {2, 2});
  m.Output("y");
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->graph.nodes_size(), 1);
  const auto& node = r->graph.nodes(0);
  EXPECT_EQ(node.op(), "avg_pool2d");
  EXPECT_THAT(IntsOf(node, "padding"), ElementsAre(1, 1, 1, 1));
  EXPECT_EQ(node.attrs().at("count_include_pad").i(), 1);
  EXPECT_THAT(IntsOf(node, "stride"), ElementsAre(2, 2));
}

TEST(OnnxImportTest, DropoutKeepsItsRatioAndRefusesAReadMask) {
  ModelBuilder m;
  m.Input("x", {0, 4});
  auto* ratio = m.graph()->add_initializer();
  ratio->set_name("ratio");
  ratio->set_data_type(onnx::TensorProto::FLOAT);
  ratio->add_float_data(0.25f);
  m.Node("Dropout", {"x", "ratio"}, {"y", "mask"});
  m.Output("y");
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->graph.nodes(0).op(), "dropout");
  EXPECT_DOUBLE_EQ(r->graph.nodes(0).attrs().at("p").f(), 0.25);
  EXPECT_TRUE(r->graph.parameters().empty());  // the ratio is folded, not trained
  m.Output("mask");
  r = ImportOnnx(m.Bytes(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("the mask output"));
}

TEST(OnnxImportTest, SoftmaxCrossEntropyAddsLabelsLossAndAccuracy) {
  ModelBuilder m = LinearModel();
  OnnxImportOptions options;
  options.loss = OnnxLossSpec{.kind = "softmax_cross_entropy", .labels = "y_true"};
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& labels = r->graph.placeholders(1);
  EXPECT_EQ(labels.name(), "y_true");
  EXPECT_EQ(labels.dtype(), backflow::v1::INT64);
  EXPECT_THAT(std::vector<int64_t>(labels.shape().begin(), labels.shape().end()), ElementsAre(-1));
  EXPECT_EQ(r->graph.loss(), "loss");
  EXPECT_EQ(FindNode(r->graph, "loss")->op(), "softmax_cross_entropy");
  EXPECT_EQ(FindNode(r->graph, "accuracy")->op(), "accuracy");
  EXPECT_TRUE(ImportGraph(r->graph).ok());

  options.loss = OnnxLossSpec{.kind = "squared_error"};
  r = ImportOnnx(m.Bytes(), options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->graph.placeholders(1).dtype(), backflow::v1::DATA_TYPE_UNSPECIFIED);
  EXPECT_EQ(r->graph.placeholders(1).shape_size(), 2);
  EXPECT_EQ(FindNode(r->graph, "loss")->attrs().at("reduction").s(), "mean");

  options.loss = OnnxLossSpec{.kind = "hinge"};
  r = ImportOnnx(m.Bytes(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("kind 'hinge' is not one of"));
  options.loss = OnnxLossSpec{.kind = "squared_error", .output = "z"};
  r = ImportOnnx(m.Bytes(), options);
  EXPECT_THAT(r.status().message(), HasSubstr("'z' is not an output of the graph"));
  options.loss = OnnxLossSpec{.kind = "squared_error", .labels = "x"};
  r = ImportOnnx(m.Bytes(), options);
  EXPECT_THAT(r.status().message(), HasSubstr("'x' is a name the graph uses already"));
}

TEST(OnnxImportTest, FrozenInitializersBecomeConstants) {
  ModelBuilder m = LinearModel();
  OnnxImportOptions options;
  options.frozen = {"fc.weight"};
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->graph.constants_size(), 1);
  EXPECT_EQ(r->graph.constants(0).name(), "fc.weight");
  ASSERT_EQ(r->graph.parameters_size(), 1);
  EXPECT_EQ(r->graph.parameters(0).name(), "fc.bias");
  options.frozen = {"fc.wieght"};
  r = ImportOnnx(m.Bytes(), options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("frozen: 'fc.wieght' is not a float initializer"));
}

Status ImportStatus(const std::string& bytes) { return ImportOnnx(bytes, {}).status(); }

TEST(OnnxImportTest, MalformedBytesAreInvalidArgument) {
  Status s = ImportStatus("\xff\xff\xff garbage");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("not an ONNX model"));
  EXPECT_EQ(ImportStatus("").code(), StatusCode::kInvalidArgument);
}

TEST(OnnxImportTest, OpsetOutsideTheRangeIsRefused) {
  ModelBuilder m = LinearModel();
  m.model().mutable_opset_import(0)->set_version(9);
  Status s = ImportStatus(m.Bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("uses opset 9; backflow imports opsets 11 to 17"));
  m.model().clear_opset_import();
  EXPECT_THAT(ImportStatus(m.Bytes()).message(),
              HasSubstr("imports no opset of the default domain"));
}

TEST(OnnxImportTest, ExternalDataIsRefused) {
  ModelBuilder m = LinearModel();
  onnx::TensorProto* w = m.graph()->mutable_initializer(0);
  w->clear_raw_data();
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* entry = w->add_external_data();
  entry->set_key("location");
  entry->set_value("../../etc/passwd");
  Status s = ImportStatus(m.Bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("initializer 'fc.weight' keeps its data in an external file "
                                     "('../../etc/passwd')"));
  EXPECT_THAT(s.message(), HasSubstr("CVE-2022-25882"));
}

TEST(OnnxImportTest, UnsupportedOperatorNamesItselfAndTheSupportedOnes) {
  ModelBuilder m;
  m.Input("boxes", {0, 4});
  m.Node("NonMaxSuppression", {"boxes"}, {"keep"});
  m.Output("keep");
  Status s = ImportStatus(m.Bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("ONNX node 'keep' (NonMaxSuppression, opset 14): operator "
                                     "not supported; backflow imports Add, AveragePool, "));
  EXPECT_THAT(s.message(), HasSubstr("Transpose, Unsqueeze, Where"));
  EXPECT_EQ(SupportedOnnxOps().front(), "Add");
}

TEST(OnnxImportTest, OnlyTheBatchDimensionMayBeSymbolic) {
  ModelBuilder m;
  m.Input("x", {0, 3, 0}, onnx::TensorProto::FLOAT, "W");
  m.Node("Relu", {"x"}, {"y"});
  m.Output("y");
  Status s = ImportStatus(m.Bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("graph input 'x': dimension 2 is 'W': only dimension 0"));
}

TEST(OnnxImportTest, UndefinedInputAndBadAttributesNameTheNode) {
  ModelBuilder m;
  m.Input("x", {0, 3});
  m.Node("Relu", {"nope"}, {"y"});
  m.Output("y");
  EXPECT_THAT(ImportStatus(m.Bytes()).message(),
              HasSubstr("ONNX node 'y' (Relu, opset 14): input 'nope' is not defined"));

  ModelBuilder c;
  c.Input("x", {0, 1, 5, 5});
  c.Floats("w", {2, 1, 3, 3}, std::vector<float>(18, 1.0f));
  auto* conv = c.Node("Conv", {"x", "w"}, {"y"});
  ModelBuilder::IntsAttr(conv, "kernel_shape", {5, 5});
  c.Output("y");
  EXPECT_THAT(ImportStatus(c.Bytes()).message(),
              HasSubstr("ONNX node 'y' (Conv, opset 14): kernel_shape disagrees with W's shape"));
}

// Found by the onnx_import fuzz target: a Shape node without outputs read past the end of its
// output list.
TEST(OnnxImportTest, ANodeWithoutOutputsIsRefused) {
  for (const std::string op : {"Shape", "Relu"}) {
    ModelBuilder m;
    m.Input("x", {0, 3});
    m.Node(op, {"x"}, {});
    m.Node("Relu", {"x"}, {"y"});
    m.Output("y");
    const Status status = ImportStatus(m.Bytes());
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << op;
    EXPECT_THAT(status.message(),
                HasSubstr("(" + op + ", opset 14): the node has no output")) << op;
  }
}

TEST(OnnxImportTest, ConvSamePaddingIsComputedFromTheShape) {
  ModelBuilder m;
  m.Input("x", {0, 1, 5, 6});
  m.Floats("w", {2, 1, 2, 2}, std::vector<float>(8, 1.0f));
  auto* conv = m.Node("Conv", {"x", "w"}, {"y"});
  auto* a = conv->add_attribute();
  a->set_name("auto_pad");
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s("SAME_UPPER");
  ModelBuilder::IntsAttr(conv, "strides", {2, 2});
  m.Output("y");
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // H 5, stride 2: 3 rows out, (3-1)*2+2-5 = 1 row of padding, at the end (UPPER); W 6: none.
  EXPECT_THAT(IntsOf(r->graph.nodes(0), "padding"), ElementsAre(0, 0, 1, 0));
}

// Known integers are folded with checked arithmetic: 2^62 * 4 (and INT64_MIN / -1) do not fit
// in int64, and used to wrap to a reshape target of 0.
TEST(OnnxImportTest, OverflowingKnownIntegerArithmeticIsRefused) {
  struct Case {
    const char* op;
    int64_t a, b;
    const char* message;
  };
  for (const Case& c : {Case{"Mul", int64_t{1} << 62, 4,
                             "ONNX node 't' (Mul, opset 14): integer 4611686018427387904 * 4 "
                             "overflows int64"},
                        Case{"Div", std::numeric_limits<int64_t>::min(), -1,
                             "ONNX node 't' (Div, opset 14): integer -9223372036854775808 / -1 "
                             "overflows int64"}}) {
    ModelBuilder m;
    m.Input("x", {0, 4});
    m.Ints("a", {c.a});
    m.Ints("b", {c.b});
    m.Node(c.op, {"a", "b"}, {"t"});
    m.Node("Reshape", {"x", "t"}, {"y"});
    m.Output("y");
    StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.op;
    EXPECT_EQ(r.status().message(), c.message);
  }
}

// Range over int64 is exact at the top of the range (doubles rounded both ends to 2^63, whose
// conversion back is undefined), and a reshape target whose product passes int64 is refused.
TEST(OnnxImportTest, IntegerRangeAtInt64MaxIsExactAndItsProductIsRefused) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  ModelBuilder m;
  m.Input("x", {0, 4});
  m.Ints("start", {kMax - 2}, true);
  m.Ints("limit", {kMax}, true);
  m.Ints("delta", {1}, true);
  m.Node("Range", {"start", "limit", "delta"}, {"t"});
  m.Node("Reshape", {"x", "t"}, {"y"});
  m.Output("y");
  StatusOr<OnnxImported> r = ImportOnnx(m.Bytes(), {});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "ONNX node 'y' (Reshape, opset 14): shape [9223372036854775805, 9223372036854775806] "
            "overflows: its dimensions multiply past INT64_MAX");
}

}  // namespace
}  // namespace backflow
