// ExportOnnx on every graph under models/: the ModelProto passes onnx 1.12's checker and strict
// shape inference (which must agree with backflow's shapes), is opset 14 / IR 7, has the
// inference graph's inputs and outputs with the open batch as "N", and holds each parameter's
// and state's value bit for bit. Then the errors: losses and metrics on the path to an output,
// missing and inconsistent values.
#include "engine/onnx/onnx_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/import.h"
#include "engine/gates/builtin.h"
#include "engine/optim/initializers.h"
#include "tests/engine/onnx/onnx_export_checks.h"

namespace backflow {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::ExpectInferredShapesAgree;
using testing::FindInitializer;
using testing::ParseChecked;
using testing::SignatureOf;

struct ExportCase {
  std::string file;                 // under models/
  std::vector<std::string> inputs;  // "name: TYPE[dims]"
  std::vector<std::string> outputs;
  int model_initializers;  // parameters and state the outputs need
  int inferred;            // tensors whose shapes onnx infers (the nodes' outputs but the graph's)
};

std::ostream& operator<<(std::ostream& os, const ExportCase& c) { return os << c.file; }

const std::vector<ExportCase>& Cases() {
  static const auto* cases = new std::vector<ExportCase>{
      // The labels and the loss and accuracy reading them are left out.
      {"lenet5.pbtxt", {"images: FLOAT[N, 1, 28, 28]"}, {"logits: FLOAT[N, 10]"}, 10, 11},
      {"mlp_tanh.pbtxt", {"images: FLOAT[N, 1, 28, 28]"}, {"logits: FLOAT[N, 10]"}, 4, 3},
      {"cifar_cnn.pbtxt", {"images: FLOAT[N, 3, 32, 32]"}, {"logits: FLOAT[N, 10]"}, 8, 9},
      // 20 parameters and the 6 batch norms' running means and variances.
      {"resnet_fmnist.pbtxt", {"images: FLOAT[N, 1, 28, 28]"}, {"logits: FLOAT[N, 10]"}, 32, 21},
      {"transformer_repeat.pbtxt", {"ids: INT64[N, 8]"}, {"logits: FLOAT[N, 2]"}, 38, 54},
      // Its output is also its loss, but no loss op computes it: it is exported.
      {"staged_circuit.pbtxt", {}, {"f: FLOAT[]"}, 2, 7},
      {"seeds/add_mul.pbtxt", {"x: FLOAT[]", "y: FLOAT[]", "z: FLOAT[]"}, {"f: FLOAT[]"}, 0, 1},
      {"seeds/inverse_square.pbtxt", {"x: FLOAT[]"}, {"y: FLOAT[]"}, 0, 1},
      {"seeds/routing.pbtxt",
       {"x: FLOAT[]", "y: FLOAT[]", "z: FLOAT[]", "w: FLOAT[]"},
       {"f: FLOAT[]"},
       0,
       3},
      {"seeds/sigmoid_neuron_fused.pbtxt", {"x0: FLOAT[]", "x1: FLOAT[]"}, {"f: FLOAT[]"}, 3, 4},
      {"seeds/sigmoid_neuron_gates.pbtxt", {"x0: FLOAT[]", "x1: FLOAT[]"}, {"f: FLOAT[]"}, 3, 7},
      {"seeds/staged.pbtxt", {"x: FLOAT[]", "y: FLOAT[]"}, {"f: FLOAT[]"}, 0, 7},
      {"seeds/two_paths.pbtxt", {"x: FLOAT[]"}, {"y: FLOAT[]"}, 0, 1},
  };
  return *cases;
}

std::string ModelsDir() { return std::string(BACKFLOW_SOURCE_DIR) + "/models/"; }

Graph LoadModel(const std::string& file) {
  StatusOr<backflow::v1::Graph> proto = LoadGraphText(ModelsDir() + file);
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return std::move(graph).value();
}

// Every parameter and state of `graph` drawn with `seed`; state is perturbed so that its bytes
// are not the zeros and ones it starts from.
std::unordered_map<std::string, Tensor> DrawValues(const Graph& graph, DType dtype, uint64_t seed) {
  StatusOr<std::unordered_map<std::string, Tensor>> params =
      InitializeParameters(graph, dtype, seed);
  EXPECT_TRUE(params.ok()) << params.status().ToString();
  std::unordered_map<std::string, Tensor> values = std::move(params).value();
  for (ValueId id : graph.ValuesOfKind(ValueKind::kState)) {
    const Value& v = graph.value(id);
    std::vector<double> e(static_cast<size_t>(v.shape.num_elements()));
    for (size_t i = 0; i < e.size(); ++i) e[i] = 0.5 + 0.1 * static_cast<double>(i) / 3.0;
    values.emplace(v.name, Tensor::FromValues(dtype, v.shape, e));
  }
  return values;
}

// Each parameter and state the graph has that the model keeps is an initializer with exactly
// the value's dtype, dims and bytes; returns how many there are.
int ExpectInitializersEqual(const onnx::ModelProto& model,
                            const std::unordered_map<std::string, Tensor>& values) {
  int found = 0;
  for (const auto& [name, tensor] : values) {
    const onnx::TensorProto* t = FindInitializer(model, name);
    if (t == nullptr) continue;
    ++found;
    EXPECT_EQ(t->data_type(), tensor.dtype() == DType::kFloat64 ? onnx::TensorProto_DataType_DOUBLE
                                                                : onnx::TensorProto_DataType_FLOAT)
        << name;
    EXPECT_THAT(std::vector<int64_t>(t->dims().begin(), t->dims().end()),
                ElementsAreArray(tensor.shape().dims()))
        << name;
    EXPECT_EQ(t->raw_data(),
              std::string(reinterpret_cast<const char*>(tensor.raw()), tensor.byte_size()))
        << name << ": bytes differ";
  }
  return found;
}

class ModelExportTest : public ::testing::TestWithParam<ExportCase> {};

TEST_P(ModelExportTest, PassesCheckerWithItsSignatureAndExactValues) {
  const ExportCase& c = GetParam();
  const Graph graph = LoadModel(c.file);
  const std::unordered_map<std::string, Tensor> values = DrawValues(graph, DType::kFloat32, 7);
  StatusOr<std::string> bytes =
      ExportOnnx(graph, values, {.producer_version = "0.3", .doc = "model m-3 at step 250"});
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const onnx::ModelProto model = ParseChecked(*bytes);

  EXPECT_EQ(model.ir_version(), 7);
  ASSERT_EQ(model.opset_import_size(), 1);
  EXPECT_EQ(model.opset_import(0).domain(), "");
  EXPECT_EQ(model.opset_import(0).version(), 14);
  EXPECT_EQ(model.producer_name(), "backflow");
  EXPECT_EQ(model.producer_version(), "0.3");
  EXPECT_EQ(model.doc_string(), "model m-3 at step 250");
  EXPECT_EQ(model.graph().name(), graph.name);
  EXPECT_THAT(SignatureOf(model.graph().input()), ElementsAreArray(c.inputs));
  EXPECT_THAT(SignatureOf(model.graph().output()), ElementsAreArray(c.outputs));
  EXPECT_EQ(ExpectInitializersEqual(model, values), c.model_initializers);
  EXPECT_EQ(ExpectInferredShapesAgree(model, graph), c.inferred);
}

INSTANTIATE_TEST_SUITE_P(Models, ModelExportTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<ExportCase>& info) {
                           std::string name = info.param.file;
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

// A new model file must add its case (as models_test does).
TEST(ModelExportTest, EveryModelFileHasACase) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(ModelsDir())) {
    if (entry.path().extension() != ".pbtxt") continue;
    files.push_back(std::filesystem::relative(entry.path(), ModelsDir()).string());
  }
  std::vector<std::string> known;
  for (const ExportCase& c : Cases()) known.push_back(c.file);
  EXPECT_THAT(files, ::testing::UnorderedElementsAreArray(known));
}

// A float64 model: float64 initializers (bit for bit), inputs and outputs.
TEST(OnnxExportTest, Float64ModelExportsDoubles) {
  const Graph graph = LoadModel("resnet_fmnist.pbtxt");
  const std::unordered_map<std::string, Tensor> values = DrawValues(graph, DType::kFloat64, 11);
  StatusOr<std::string> bytes = ExportOnnx(graph, values);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const onnx::ModelProto model = ParseChecked(*bytes);
  EXPECT_THAT(SignatureOf(model.graph().input()), ElementsAre("images: DOUBLE[N, 1, 28, 28]"));
  EXPECT_THAT(SignatureOf(model.graph().output()), ElementsAre("logits: DOUBLE[N, 10]"));
  EXPECT_EQ(ExpectInitializersEqual(model, values), 32);
}

// The ONNX graph has only the nodes the outputs need, in the backflow graph's order.
TEST(OnnxExportTest, KeepsOnlyTheNodesTheOutputsNeed) {
  const Graph graph = LoadModel("mlp_tanh.pbtxt");
  StatusOr<std::string> bytes = ExportOnnx(graph, DrawValues(graph, DType::kFloat32, 1));
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const onnx::ModelProto model = ParseChecked(*bytes);
  std::vector<std::string> ops;
  for (const onnx::NodeProto& node : model.graph().node()) {
    ops.push_back(node.op_type() + " " + node.output(0));
  }
  EXPECT_THAT(ops, ElementsAre("Flatten x", "Gemm h_pre", "Tanh h", "Gemm logits"));
}

Status ExportStatus(const Graph& graph, const std::unordered_map<std::string, Tensor>& values) {
  return ExportOnnx(graph, values).status();
}

// A small graph: x [N, 4] -> linear (w, b) -> h; labels [N].
struct Small {
  Graph graph{BuiltinGates()};
  ValueId x, labels, w, b, h;
  Small() {
    x = *graph.AddPlaceholder("x", Shape{kBatchDim, 4});
    labels = *graph.AddPlaceholder("labels", Shape{kBatchDim}, DType::kInt64);
    w = *graph.AddParameter("w", Shape{4, 3});
    b = *graph.AddParameter("b", Shape{3});
    h = *graph.AddNode("h", "linear", {x, w, b});
  }
  std::unordered_map<std::string, Tensor> Values(DType dtype = DType::kFloat32) const {
    return {{"w", Tensor(dtype, Shape{4, 3})}, {"b", Tensor(dtype, Shape{3})}};
  }
};

TEST(OnnxExportErrorTest, LossOnThePathToAnOutput) {
  Small s;
  const ValueId loss = *s.graph.AddNode("loss", "softmax_cross_entropy", {s.h, s.labels});
  s.graph.AddOutput(*s.graph.AddNode("scaled_loss", "mul_scalar", {loss}, {{"a", 2.0}}));
  EXPECT_EQ(ExportStatus(s.graph, s.Values()),
            InvalidArgumentError("node 'loss': op 'softmax_cross_entropy' has no ONNX form (a "
                                 "loss or metric; the exported inference graph's outputs must "
                                 "not need it)"));
}

TEST(OnnxExportErrorTest, OnlyLossesAndMetricsAsOutputs) {
  Small s;
  s.graph.name = "g";
  s.graph.AddOutput(*s.graph.AddNode("accuracy", "accuracy", {s.h, s.labels}));
  EXPECT_EQ(ExportStatus(s.graph, s.Values()),
            InvalidArgumentError(
                "graph 'g' has no output to export: its outputs are all losses or metrics"));
}

TEST(OnnxExportErrorTest, MetricOutputsAreLeftOut) {
  Small s;
  s.graph.AddOutput(s.h);
  s.graph.AddOutput(*s.graph.AddNode("accuracy", "accuracy", {s.h, s.labels}));
  StatusOr<std::string> bytes = ExportOnnx(s.graph, s.Values());
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  const onnx::ModelProto model = ParseChecked(*bytes);
  EXPECT_THAT(SignatureOf(model.graph().input()), ElementsAre("x: FLOAT[N, 4]"));
  EXPECT_THAT(SignatureOf(model.graph().output()), ElementsAre("h: FLOAT[N, 3]"));
}

TEST(OnnxExportErrorTest, OpWithoutOnnxForm) {
  Small s;
  s.graph.AddOutput(*s.graph.AddNode("both", "add_n", {s.h, s.h}));
  EXPECT_EQ(ExportStatus(s.graph, s.Values()),
            InvalidArgumentError("node 'both': op 'add_n' has no ONNX form"));
}

TEST(OnnxExportErrorTest, MissingParameterValue) {
  Small s;
  s.graph.AddOutput(s.h);
  std::unordered_map<std::string, Tensor> values = s.Values();
  values.erase("b");
  EXPECT_EQ(ExportStatus(s.graph, values),
            InvalidArgumentError("parameter 'b' has no value to export"));
}

TEST(OnnxExportErrorTest, MissingStateValue) {
  Small s;
  const ValueId mean = *s.graph.AddState("mean", Shape{3});
  const ValueId var = *s.graph.AddState("var", Shape{3});
  s.graph.AddOutput(*s.graph.AddNode("bn", "batch_norm", {s.h, mean, var}));
  std::unordered_map<std::string, Tensor> values = s.Values();
  values.emplace("mean", Tensor(DType::kFloat32, Shape{3}));
  EXPECT_EQ(ExportStatus(s.graph, values),
            InvalidArgumentError("state 'var' has no value to export"));
}

TEST(OnnxExportErrorTest, ValueOfTheWrongShapeOrDType) {
  Small s;
  s.graph.AddOutput(s.h);
  std::unordered_map<std::string, Tensor> values = s.Values();
  values["b"] = Tensor(DType::kFloat32, Shape{4});
  EXPECT_EQ(ExportStatus(s.graph, values),
            InvalidArgumentError("parameter 'b' is [3] but its value is [4]"));
  values["b"] = Tensor(DType::kInt64, Shape{3});
  EXPECT_EQ(ExportStatus(s.graph, values),
            InvalidArgumentError("parameter 'b': its value is int64, not float32 or float64"));
  values["b"] = Tensor(DType::kFloat64, Shape{3});
  EXPECT_EQ(ExportStatus(s.graph, values),
            InvalidArgumentError("parameter 'b': its value is float64 but 'w''s is float32 (one "
                                 "dtype per model)"));
}

// Values of parameters no output needs may be absent.
TEST(OnnxExportErrorTest, UnneededParametersNeedNoValue) {
  Small s;
  (void)*s.graph.AddParameter("unused", Shape{2});
  s.graph.AddOutput(s.h);
  EXPECT_TRUE(ExportOnnx(s.graph, s.Values()).ok());
}

}  // namespace
}  // namespace backflow
