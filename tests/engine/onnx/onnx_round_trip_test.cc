// ExportOnnx then ImportOnnx: the imported model has the original's parameters and running
// state (same names, same bits) and computes the same outputs; exported and imported once more,
// it computes them bitwise (import -> export -> import is exact).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/evaluate.h"
#include "engine/api/import.h"
#include "engine/onnx/onnx_export.h"
#include "engine/onnx/onnx_import.h"
#include "engine/optim/initializers.h"
#include "tests/engine/onnx/every_op_graph.h"
#include "tests/engine/onnx/onnx_export_checks.h"

namespace backflow {
namespace {

using Values = std::unordered_map<std::string, Tensor>;

struct Model {
  Graph graph;
  Values values;
};

Model LoadModel(const std::string& file) {
  StatusOr<backflow::v1::Graph> proto =
      LoadGraphText(std::string(BACKFLOW_SOURCE_DIR) + "/models/" + file);
  EXPECT_TRUE(proto.ok()) << proto.status().ToString();
  StatusOr<Graph> graph = ImportGraph(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  Values values = InitializeParameters(*graph, DType::kFloat32, 5).value();
  for (ValueId id : graph->ValuesOfKind(ValueKind::kState)) {
    const Value& v = graph->value(id);
    std::vector<double> e(static_cast<size_t>(v.shape.num_elements()));
    for (size_t i = 0; i < e.size(); ++i) e[i] = 0.4 + 0.03 * static_cast<double>(i % 11);
    values.emplace(v.name, Tensor::FromValues(DType::kFloat32, v.shape, e));
  }
  return Model{std::move(graph).value(), std::move(values)};
}

// Export, then import: the model ImportOnnx makes of the export.
Model RoundTrip(const Model& m) {
  StatusOr<std::string> bytes = ExportOnnx(m.graph, m.values);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  (void)testing::ParseChecked(*bytes);  // onnx.checker and strict shape inference
  StatusOr<OnnxImported> imported = ImportOnnx(*bytes, {});
  EXPECT_TRUE(imported.ok()) << imported.status().ToString();
  StatusOr<Graph> graph = ImportGraph(imported->graph);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  Values values(imported->values.begin(), imported->values.end());
  return Model{std::move(graph).value(), std::move(values)};
}

// The inference outputs (the ONNX graph's, by name) for batch-3 inputs drawn from `seed`.
std::map<std::string, Tensor> Infer(const Model& m, const std::vector<std::string>& outputs,
                                    int64_t ids_below) {
  std::mt19937_64 rng(17);
  Values feeds = m.values;
  for (ValueId id : m.graph.ValuesOfKind(ValueKind::kPlaceholder)) {
    const Value& v = m.graph.value(id);
    const Shape shape = v.shape.WithBatch(3);
    std::vector<double> e(static_cast<size_t>(shape.num_elements()));
    for (double& x : e) {
      x = IsInteger(v.dtype) ? static_cast<double>(rng() % static_cast<uint64_t>(ids_below))
                             : std::uniform_real_distribution<double>(-1, 1)(rng);
    }
    feeds.emplace(v.name,
                  Tensor::FromValues(IsInteger(v.dtype) ? v.dtype : DType::kFloat32, shape, e));
  }
  StatusOr<EvaluateResult> result =
      Evaluate(m.graph, feeds, {.outputs = outputs, .mode = EvaluateMode::kInference});
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  std::map<std::string, Tensor> by_name;
  if (result.ok()) {
    for (auto& [name, t] : result->outputs) by_name.emplace(name, std::move(t));
  }
  return by_name;
}

void ExpectSameValues(const Values& original, const Values& imported) {
  EXPECT_EQ(original.size(), imported.size());
  for (const auto& [name, tensor] : original) {
    auto it = imported.find(name);
    ASSERT_NE(it, imported.end()) << name << " did not come back";
    EXPECT_TRUE(BitwiseEqual(tensor, it->second)) << name;
  }
}

std::vector<std::string> Ops(const Graph& g) {
  std::vector<std::string> ops;
  for (const Node& n : g.nodes()) ops.push_back(n.op);
  return ops;
}

struct RoundTripCase {
  std::string file;
  std::vector<std::string> outputs;
  int64_t ids_below;
};

std::ostream& operator<<(std::ostream& os, const RoundTripCase& c) { return os << c.file; }

class OnnxRoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

// The CNNs and the MLP come back as the same ops, so their outputs are bitwise the original's.
TEST_P(OnnxRoundTripTest, SameParametersSameOpsSameOutputs) {
  const Model original = LoadModel(GetParam().file);
  const Model imported = RoundTrip(original);
  ExpectSameValues(original.values, imported.values);
  std::vector<std::string> ops = Ops(original.graph);
  std::erase_if(
      ops, [](const std::string& op) { return op == "softmax_cross_entropy" || op == "accuracy"; });
  EXPECT_EQ(Ops(imported.graph), ops);
  const auto want = Infer(original, GetParam().outputs, GetParam().ids_below);
  const auto got = Infer(imported, GetParam().outputs, GetParam().ids_below);
  for (const auto& [name, tensor] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_TRUE(BitwiseEqual(got.at(name), tensor)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, OnnxRoundTripTest,
                         ::testing::Values(RoundTripCase{"resnet_fmnist.pbtxt", {"logits"}, 1},
                                           RoundTripCase{"lenet5.pbtxt", {"logits"}, 1},
                                           RoundTripCase{"mlp_tanh.pbtxt", {"logits"}, 1},
                                           RoundTripCase{"cifar_cnn.pbtxt", {"logits"}, 1}),
                         [](const auto& info) {
                           return info.param.file.substr(0, info.param.file.find('.'));
                         });

// gelu and layer_norm come back as the elementwise nodes opset 14 writes them with, close to
// the fused gates; from there on, export and import are exact.
TEST(OnnxRoundTripTest, TransformerIsExactFromTheFirstImportOn) {
  const Model original = LoadModel("transformer_repeat.pbtxt");
  const Model once = RoundTrip(original);
  ExpectSameValues(original.values, once.values);
  const Model twice = RoundTrip(once);
  ExpectSameValues(once.values, twice.values);
  EXPECT_EQ(Ops(twice.graph), Ops(once.graph));
  const auto want = Infer(original, {"logits"}, 16);
  const auto first = Infer(once, {"logits"}, 16);
  const auto second = Infer(twice, {"logits"}, 16);
  ASSERT_EQ(want.size(), 1u);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(BitwiseEqual(first.at("logits"), second.at("logits")));
  const std::vector<double> a = want.at("logits").ToDoubles();
  const std::vector<double> b = first.at("logits").ToDoubles();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * (1 + std::abs(a[i])));
}

// Every op: what each comes back as, and the same
// outputs: bitwise where the op comes back as itself, within float32 rounding where it comes
// back as other gates (gelu, layer_norm: their opset-14 decompositions; linear of rank 3:
// matmul and add; a batched matmul's transpose flags: transpose nodes).
TEST(OnnxRoundTripTest, EveryOp) {
  testing::Builder b = testing::EveryOp();
  const Model original{std::move(b.graph), std::move(b.values)};
  const Model imported = RoundTrip(original);
  ExpectSameValues(original.values, imported.values);
  std::map<std::string, std::string> came_back;  // backflow node -> the ops it came back as
  for (const Node& n : imported.graph.nodes()) {
    std::string& ops = came_back[n.name.substr(0, n.name.find('.'))];
    ops += (ops.empty() ? "" : " ") + n.op;
  }
  std::vector<std::string> outputs;
  for (const Node& n : original.graph.nodes()) {
    const std::string& back = came_back[n.name];
    outputs.push_back(n.name);
    if (n.op == back) continue;
    EXPECT_EQ(back, (std::map<std::string, std::string>{
                        {"add_scalar", "add"},  // with a constant
                        {"mul_scalar", "mul"},
                        {"gelu", "div erf add mul mul"},
                        {"gelu_tanh", "mul mul mul add mul tanh add mul mul"},
                        {"fc_nobias", "matmul"},
                        {"fc3", "matmul add"},
                        {"fc3_nobias", "matmul"},
                        {"bmm_tb", "transpose matmul"},
                        {"bmm_ta", "transpose matmul"},
                        {"ln", "mean sub square mean add sqrt div mul add"},
                        {"ln_plain", "mean sub square mean add sqrt div"}})[n.name])
        << n.name << " (" << n.op << ")";
  }
  const auto want = Infer(original, outputs, 7);
  const auto got = Infer(imported, outputs, 7);
  for (const Node& n : original.graph.nodes()) {
    const Tensor& w = want.at(n.name);
    const Tensor& g = got.at(n.name);
    if (n.op == came_back[n.name]) {
      EXPECT_TRUE(BitwiseEqual(g, w)) << n.name;
      continue;
    }
    const std::vector<double> a = w.ToDoubles();
    const std::vector<double> c = g.ToDoubles();
    ASSERT_EQ(a.size(), c.size()) << n.name;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(a[i], c[i], 1e-5 * (1 + std::abs(a[i]))) << n.name << " element " << i;
    }
  }
}

// PyTorch 1.13's exports (the importer's fixtures, tests/engine/onnx/generate.py): imported,
// exported and imported again, the model has the same ops and parameters and computes the same
// outputs bitwise, and the export passes onnx.checker (import -> export -> import is exact).
class TorchFixtureRoundTripTest : public ::testing::TestWithParam<std::string> {};

Model ImportFixture(const std::string& name) {
  std::ifstream in(std::string(BACKFLOW_SOURCE_DIR) + "/tests/engine/onnx/" + name + ".onnx",
                   std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  StatusOr<OnnxImported> imported = ImportOnnx(bytes, {});
  EXPECT_TRUE(imported.ok()) << imported.status().ToString();
  StatusOr<Graph> graph = ImportGraph(imported->graph);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return Model{std::move(graph).value(), Values(imported->values.begin(), imported->values.end())};
}

TEST_P(TorchFixtureRoundTripTest, ImportExportImportIsExact) {
  const Model first = ImportFixture(GetParam());
  const Model second = RoundTrip(first);
  ExpectSameValues(first.values, second.values);
  EXPECT_EQ(Ops(second.graph), Ops(first.graph));
  int64_t ids_below = 1;  // the embedding's rows, for token ids
  for (const Node& n : first.graph.nodes()) {
    if (n.op == "embedding") ids_below = first.graph.value(n.inputs[0]).shape.dim(0);
  }
  const auto want = Infer(first, {"output"}, ids_below);
  const auto got = Infer(second, {"output"}, ids_below);
  ASSERT_EQ(want.size(), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(BitwiseEqual(got.at("output"), want.at("output")));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchFixtureRoundTripTest,
                         ::testing::Values("mlp", "lenet", "resnet", "depthwise", "transformer"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace backflow
