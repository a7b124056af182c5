// Exported models compute what backflow computes: each case is exported with ONNX's test-data
// layout (model.onnx, test_data_set_0/input_K.pb and output_K.pb holding backflow's own
// inference outputs for random inputs), then onnx_reference.py, with Debian's python3-onnx and
// numpy, runs onnx.checker.check_model(full_check=True) and a numpy interpreter of the ONNX
// operators on it and compares. The cases: the every-op graph, models/ graphs in float32 and
// float64, and PyTorch 1.13's exports of the importer's fixtures as ImportOnnx makes them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/evaluate.h"
#include "engine/api/import.h"
#include "engine/onnx/onnx_export.h"
#include "engine/onnx/onnx_import.h"
#include "engine/optim/initializers.h"
#include "onnx/onnx_pb.h"
#include "tests/engine/onnx/every_op_graph.h"
#include "tests/testing/temp_dir.h"

namespace backflow {
namespace {

constexpr int64_t kBatch = 2;

struct Case {
  std::string name;
  Graph graph;
  std::unordered_map<std::string, Tensor> values;  // parameters and state
  DType dtype;
};

void WriteProto(const google::protobuf::Message& message, const std::filesystem::path& path) {
  std::ofstream out(path, std::ios::binary);
  ASSERT_TRUE(message.SerializeToOstream(&out)) << path;
}

onnx::TensorProto ToProto(const std::string& name, const Tensor& t) {
  onnx::TensorProto proto;
  proto.set_name(name);
  for (int64_t d : t.shape().dims()) proto.add_dims(d);
  switch (t.dtype()) {
    case DType::kFloat32:
      proto.set_data_type(onnx::TensorProto_DataType_FLOAT);
      break;
    case DType::kFloat64:
      proto.set_data_type(onnx::TensorProto_DataType_DOUBLE);
      break;
    case DType::kInt32:
      proto.set_data_type(onnx::TensorProto_DataType_INT32);
      break;
    case DType::kInt64:
      proto.set_data_type(onnx::TensorProto_DataType_INT64);
      break;
  }
  proto.set_raw_data(reinterpret_cast<const char*>(t.raw()), t.byte_size());
  return proto;
}

// Random feeds for the model's inputs: floats in [-1, 1], ids in [0, ids_below).
std::unordered_map<std::string, Tensor> Feeds(const Case& c, const onnx::ModelProto& model,
                                              int64_t ids_below) {
  std::mt19937_64 rng(42);
  std::unordered_map<std::string, Tensor> feeds;
  for (const onnx::ValueInfoProto& input : model.graph().input()) {
    const Value& v = c.graph.value(*c.graph.Find(input.name()));
    const Shape shape = v.shape.WithBatch(kBatch);
    std::vector<double> e(static_cast<size_t>(shape.num_elements()));
    for (double& x : e) {
      x = IsInteger(v.dtype) ? static_cast<double>(rng() % static_cast<uint64_t>(ids_below))
                             : std::uniform_real_distribution<double>(-1, 1)(rng);
    }
    feeds.emplace(v.name, Tensor::FromValues(IsInteger(v.dtype) ? v.dtype : c.dtype, shape, e));
  }
  return feeds;
}

// Writes the case's folder under `root`: the exported model and backflow's inference outputs.
void WriteCase(const Case& c, const std::filesystem::path& root, int64_t ids_below) {
  StatusOr<std::string> bytes = ExportOnnx(c.graph, c.values);
  ASSERT_TRUE(bytes.ok()) << c.name << ": " << bytes.status().ToString();
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(*bytes));
  const std::filesystem::path data = root / c.name / "test_data_set_0";
  std::filesystem::create_directories(data);
  WriteProto(model, root / c.name / "model.onnx");

  std::unordered_map<std::string, Tensor> feeds = Feeds(c, model, ids_below);
  EvaluateSpec spec{.mode = EvaluateMode::kInference};
  for (int k = 0; k < model.graph().input_size(); ++k) {
    const std::string& name = model.graph().input(k).name();
    WriteProto(ToProto(name, feeds.at(name)), data / ("input_" + std::to_string(k) + ".pb"));
  }
  for (const onnx::ValueInfoProto& output : model.graph().output()) {
    spec.outputs.push_back(output.name());
  }
  feeds.insert(c.values.begin(), c.values.end());
  StatusOr<EvaluateResult> result = Evaluate(c.graph, feeds, spec);
  ASSERT_TRUE(result.ok()) << c.name << ": " << result.status().ToString();
  for (size_t k = 0; k < result->outputs.size(); ++k) {
    const auto& [name, tensor] = result->outputs[k];
    WriteProto(ToProto(name, tensor), data / ("output_" + std::to_string(k) + ".pb"));
  }
}

Case ModelCase(const std::string& file, DType dtype) {
  StatusOr<backflow::v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/" + file);
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  std::unordered_map<std::string, Tensor> values = InitializeParameters(*graph, dtype, 3).value();
  // Running statistics away from 0 and 1, so that batch norm's use of them shows.
  for (ValueId id : graph->ValuesOfKind(ValueKind::kState)) {
    const Value& v = graph->value(id);
    std::vector<double> e(static_cast<size_t>(v.shape.num_elements()));
    for (size_t i = 0; i < e.size(); ++i) e[i] = 0.3 + 0.05 * static_cast<double>(i % 9);
    values.emplace(v.name, Tensor::FromValues(dtype, v.shape, e));
  }
  std::string name = file.substr(0, file.find('.'));
  name += dtype == DType::kFloat64 ? "_f64" : "_f32";
  return Case{name, std::move(graph).value(), std::move(values), dtype};
}

// A PyTorch 1.13 export (tests/engine/onnx/generate.py) as ImportOnnx makes it.
Case FixtureCase(const std::string& name) {
  std::ifstream in(std::string(BACKFLOW_SOURCE_DIR) + "/tests/engine/onnx/" + name + ".onnx",
                   std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatusOr<OnnxImported> imported = ImportOnnx(bytes, {});
  EXPECT_TRUE(imported.ok()) << imported.status().ToString();
  StatusOr<Graph> graph = ImportGraph(imported->graph);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return Case{
      "torch_" + name, std::move(graph).value(),
      std::unordered_map<std::string, Tensor>(imported->values.begin(), imported->values.end()),
      DType::kFloat32};
}

TEST(OnnxExportReferenceTest, ExportedModelsComputeWhatBackflowComputes) {
  testing::TempDir dir("backflow-onnx-");
  const std::filesystem::path root = dir.path();
  std::string cases;
  auto add = [&](const Case& c, int64_t ids_below) {
    WriteCase(c, root, ids_below);
    cases += " " + (root / c.name).string();
  };
  testing::Builder every = testing::EveryOp();
  add(Case{"every_op", std::move(every.graph), std::move(every.values), DType::kFloat32}, 7);
  add(ModelCase("resnet_fmnist.pbtxt", DType::kFloat32), 1);
  add(ModelCase("resnet_fmnist.pbtxt", DType::kFloat64), 1);
  add(ModelCase("transformer_repeat.pbtxt", DType::kFloat32), 16);
  add(ModelCase("transformer_repeat.pbtxt", DType::kFloat64), 16);
  add(ModelCase("lenet5.pbtxt", DType::kFloat32), 1);
  add(ModelCase("staged_circuit.pbtxt", DType::kFloat64), 1);
  for (const char* name : {"mlp", "lenet", "resnet", "depthwise"}) add(FixtureCase(name), 1);
  add(FixtureCase("transformer"), 11);  // nn.Embedding(11, 16)
  if (HasFatalFailure()) return;
  const std::string command = std::string(BACKFLOW_PYTHON) + " " + BACKFLOW_SOURCE_DIR +
                              "/tests/engine/onnx/onnx_reference.py" + cases;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

}  // namespace
}  // namespace backflow
