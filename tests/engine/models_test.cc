// Every graph file under models/ imports, has exactly the parameters its comment counts, and runs
// forward and backward on a batch of 3 with the documented output shapes. A new model file must
// add its row to kModels: the test fails on a file it does not know.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/api/import.h"
#include "engine/autodiff/autodiff.h"
#include "engine/exec/program.h"
#include "engine/optim/initializers.h"

namespace backflow {
namespace {

struct ModelCase {
  std::string file;  // relative to models/
  int64_t parameter_elements;
  int parameter_tensors;
  std::map<std::string, Shape> outputs;  // for a batch of 3
};

std::ostream& operator<<(std::ostream& os, const ModelCase& c) { return os << c.file; }

const Shape kScalar{};
const Shape kLogits{3, 10};

const std::vector<ModelCase>& Models() {
  static const auto* models = new std::vector<ModelCase>{
      // 156 + 2416 + 48120 + 10164 + 850, as in the file's table.
      {"lenet5.pbtxt", 61706, 10, {{"logits", kLogits}, {"accuracy", kScalar}}},
      // 200960 + 2570.
      {"mlp_tanh.pbtxt", 203530, 4, {{"logits", kLogits}, {"accuracy", kScalar}}},
      // 896 + 18496 + 1048832 + 2570.
      {"cifar_cnn.pbtxt", 1070794, 8, {{"logits", kLogits}, {"accuracy", kScalar}}},
      // x and y, the staged circuit's inputs as parameters.
      {"staged_circuit.pbtxt", 2, 2, {{"f", kScalar}}},
      // Convolutions 144 + 2304 + 2304 + 4608 + 9216 + 512, six batch norms' weight and bias
      // 2 * (16 + 16 + 16 + 32 + 32 + 32), classifier 320 + 10.
      {"resnet_fmnist.pbtxt", 19706, 20, {{"logits", kLogits}, {"accuracy", kScalar}}},
      // Embedding 512, positions 256, two layers of 2 * 64 (layer norms) + 4 * 1056 (q, k, v, o)
      // + 2112 + 2080 (MLP), final layer norm 64, classifier 66.
      {"transformer_repeat.pbtxt", 17986, 38, {{"logits", Shape{3, 2}}, {"accuracy", kScalar}}},
      {"seeds/add_mul.pbtxt", 0, 0, {{"f", kScalar}}},
      {"seeds/inverse_square.pbtxt", 0, 0, {{"y", kScalar}}},
      {"seeds/routing.pbtxt", 0, 0, {{"f", kScalar}}},
      {"seeds/sigmoid_neuron_fused.pbtxt", 3, 3, {{"f", kScalar}}},
      {"seeds/sigmoid_neuron_gates.pbtxt", 3, 3, {{"f", kScalar}}},
      {"seeds/staged.pbtxt", 0, 0, {{"f", kScalar}}},
      {"seeds/two_paths.pbtxt", 0, 0, {{"y", kScalar}}},
  };
  return *models;
}

const std::string kModelsDir = std::string(BACKFLOW_SOURCE_DIR) + "/models/";

TEST(ModelsTest, EveryGraphFileHasACase) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(kModelsDir)) {
    if (entry.path().extension() == ".pbtxt") {
      files.push_back(std::filesystem::relative(entry.path(), kModelsDir).string());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> known;
  for (const ModelCase& c : Models()) known.push_back(c.file);
  std::sort(known.begin(), known.end());
  EXPECT_EQ(files, known);
}

// A batch of 3 for every placeholder: class ids for "labels" (as the losses read them), 0 and 1
// in integer placeholders (valid ids and labels of every model here), values in [0, 1)
// elsewhere, like scaled pixels.
std::map<std::string, Tensor> MakeBatch(const Graph& graph) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> unit(0, 1);
  std::map<std::string, Tensor> batch;
  for (ValueId id : graph.ValuesOfKind(ValueKind::kPlaceholder)) {
    const Value& v = graph.value(id);
    const Shape shape = v.shape.WithBatch(3);
    std::vector<double> values(static_cast<size_t>(shape.num_elements()));
    const bool ids = IsInteger(v.dtype);
    for (size_t i = 0; i < values.size(); ++i) {
      values[i] = ids ? i % 2 : v.name == "labels" ? i % 10 : unit(rng);
    }
    batch[v.name] = Tensor::FromValues(ids ? v.dtype : DType::kFloat32, shape, values);
  }
  return batch;
}

class ModelsTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelsTest, ImportsWithItsParameterCountAndRunsABatchOfThree) {
  const ModelCase& c = GetParam();
  StatusOr<v1::Graph> proto = LoadGraphText(kModelsDir + c.file);
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> imported = ImportGraph(*proto);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  auto graph = std::make_shared<Graph>(std::move(*imported));

  const std::vector<ValueId> params = graph->ValuesOfKind(ValueKind::kParameter);
  int64_t elements = 0;
  for (ValueId p : params) elements += graph->value(p).shape.num_elements();
  EXPECT_EQ(elements, c.parameter_elements);
  EXPECT_EQ(static_cast<int>(params.size()), c.parameter_tensors);
  ASSERT_NE(graph->loss(), kNoId);
  std::vector<std::string> outputs;
  for (ValueId id : graph->outputs()) outputs.push_back(graph->value(id).name);
  std::vector<std::string> expected_outputs;
  for (const auto& [name, shape] : c.outputs) expected_outputs.push_back(name);
  std::sort(outputs.begin(), outputs.end());
  EXPECT_EQ(outputs, expected_outputs);

  // Forward and backward together: the outputs, the loss and dL/dp for every parameter.
  StatusOr<std::vector<ValueId>> grads = AppendBackward(*graph, graph->loss(), params);
  ASSERT_TRUE(grads.ok()) << grads.status().ToString();
  std::vector<ValueId> fetches;
  for (const auto& [name, shape] : c.outputs) fetches.push_back(*graph->Find(name));
  fetches.push_back(graph->loss());
  fetches.insert(fetches.end(), grads->begin(), grads->end());

  std::map<std::string, Tensor> batch = MakeBatch(*graph);
  StatusOr<std::unordered_map<std::string, Tensor>> values =
      InitializeParameters(*graph, DType::kFloat32, /*seed=*/1);
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  StatusOr<std::unordered_map<std::string, Tensor>> state =
      InitializeParameters(*graph, DType::kFloat32, /*seed=*/1, ValueKind::kState);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  values->merge(*state);  // batch norm's running statistics, read in inference mode
  FeedMap feeds;
  for (const auto& [name, tensor] : batch) feeds[name] = &tensor;
  for (const auto& [name, tensor] : *values) feeds[name] = &tensor;
  Program program(graph);
  StatusOr<std::vector<Tensor>> out = program.Run(feeds, fetches);
  ASSERT_TRUE(out.ok()) << out.status().ToString();

  size_t k = 0;
  for (const auto& [name, shape] : c.outputs) EXPECT_EQ((*out)[k++].shape(), shape) << name;
  const Tensor& loss = (*out)[k++];
  EXPECT_EQ(loss.shape(), kScalar);
  EXPECT_TRUE(std::isfinite(loss.at(0))) << loss.at(0);
  for (ValueId p : params) {
    EXPECT_EQ((*out)[k++].shape(), graph->value(p).shape) << "d/d" << graph->value(p).name;
  }
}

INSTANTIATE_TEST_SUITE_P(Files, ModelsTest, ::testing::ValuesIn(Models()), [](const auto& info) {
  std::string name = info.param.file.substr(0, info.param.file.size() - 6);  // drop ".pbtxt"
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
});

}  // namespace
}  // namespace backflow
