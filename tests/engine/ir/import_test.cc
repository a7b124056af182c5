#include "engine/api/import.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace backflow {
namespace {

// x: a batch of 3-vectors; w: a 3-vector parameter. Most cases build on these.
constexpr char kBase[] =
    R"(name: "g" placeholders { name: "x" shape: [-1, 3] } parameters { name: "w" shape: [3] })";

// Zero bytes in text format: three float32 zeros, and one float64 (or two float32) zero.
constexpr char kZeros12[] = R"("\000\000\000\000\000\000\000\000\000\000\000\000")";
constexpr char kZeros8[] = R"("\000\000\000\000\000\000\000\000")";

std::string Base(const std::string& rest) { return kBase + rest; }

backflow::v1::Graph MustParse(const std::string& text) {
  StatusOr<backflow::v1::Graph> graph = ParseGraphText(text);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString() << "\n" << text;
  return graph.ok() ? *graph : backflow::v1::Graph();
}

struct FaultCase {
  std::string name;
  std::string text;
  StatusCode code;
  std::string message;  // must appear in the status message
  GraphLimits limits = {};
};

GraphLimits Limits(void (*set)(GraphLimits&)) {
  GraphLimits limits;
  set(limits);
  return limits;
}

// Each case: a name, the graph in text format, the expected code and a substring of the
// message that names the culprit.
std::vector<FaultCase> FaultCases() {
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  const StatusCode kExhausted = StatusCode::kResourceExhausted;
  const std::string long_name(300, 'a');
  return {
      // Names.
      {"EmptyPlaceholderName", R"(placeholders { shape: [3] })", kInvalid,
       "placeholder #0 has an empty name"},
      {"EmptyNodeName", Base(R"(nodes { op: "add" inputs: ["x", "w"] })"), kInvalid,
       "node #0 has an empty name"},
      {"ParameterReusesPlaceholderName", Base(R"(parameters { name: "x" shape: [3] })"), kInvalid,
       "parameter 'x': duplicate name (already used by a placeholder)"},
      {"DuplicateNode", Base(R"(
          nodes { name: "h" op: "add" inputs: ["x", "w"] }
          nodes { name: "h" op: "mul" inputs: ["x", "w"] })"),
       kInvalid, "node 'h': duplicate name (already used by a node)"},
      {"NodeReusesConstantName",
       Base(std::string(R"(
          constants { name: "c" value { shape: [3] data: )") +
            kZeros12 + R"( } }
          nodes { name: "c" op: "add" inputs: ["x", "w"] })"),
       kInvalid, "node 'c': duplicate name (already used by a constant)"},
      {"NameTooLong", Base("nodes { name: '" + long_name + "' op: 'add' inputs: ['x', 'w'] }"),
       kExhausted, "name is 300 bytes, longer than the limit of 256"},
      // Ops, inputs and the data flow.
      {"UnknownOp", Base(R"(nodes { name: "h" op: "matmulz" inputs: ["x", "w"] })"), kInvalid,
       "node 'h': unknown op 'matmulz' (known ops: "},
      {"InternalOp", Base(R"(nodes { name: "h" op: "mul_grad" inputs: ["x", "w", "x", "x"] })"),
       kInvalid, "node 'h': op 'mul_grad' is internal to autodiff"},
      {"MissingInput", Base(R"(nodes { name: "h" op: "add" inputs: ["x2", "w"] })"), kInvalid,
       "node 'h': input 'x2' is not defined"},
      {"TwoNodeCycle", Base(R"(
          nodes { name: "a" op: "add" inputs: ["x", "b"] }
          nodes { name: "b" op: "add" inputs: ["a", "w"] })"),
       kInvalid, "node 'a': is on a cycle: a -> b -> a"},
      {"SelfLoop", Base(R"(nodes { name: "h" op: "add" inputs: ["h", "w"] })"), kInvalid,
       "node 'h': is on a cycle: h -> h"},
      {"CycleBehindAConsumer", Base(R"(
          nodes { name: "out" op: "add" inputs: ["c", "w"] }
          nodes { name: "a" op: "add" inputs: ["c", "x"] }
          nodes { name: "b" op: "sub" inputs: ["a", "w"] }
          nodes { name: "c" op: "mul" inputs: ["b", "w"] })"),
       kInvalid, "node 'a': is on a cycle: a -> b -> c -> a"},
      {"AddArity", Base(R"(nodes { name: "h" op: "add" inputs: ["x"] })"), kInvalid,
       "node 'h' (add): takes 2 input(s), got 1"},
      {"AddNNoInputs", Base(R"(nodes { name: "s" op: "add_n" })"), kInvalid,
       "node 's' (add_n): takes at least 1 input(s), got 0"},
      {"UnknownAttribute", Base(R"(
          nodes { name: "h" op: "add" inputs: ["x", "w"]
                  attrs { key: "alpha" value { f: 0.5 } } })"),
       kInvalid, "node 'h' (add): unknown attribute 'alpha'"},
      {"AttributeWithoutValue", Base(R"(
          nodes { name: "h" op: "add" inputs: ["x", "w"] attrs { key: "alpha" value {} } })"),
       kInvalid, "node 'h': attribute 'alpha' has no value"},
      {"AttributeNaN", Base(R"(
          nodes { name: "h" op: "add" inputs: ["x", "w"]
                  attrs { key: "alpha" value { f: nan } } })"),
       kInvalid, "node 'h': attribute 'alpha' is NaN"},
      {"ShapesDoNotBroadcast", Base(R"(
          parameters { name: "v" shape: [4] }
          nodes { name: "h" op: "add" inputs: ["x", "v"] })"),
       kInvalid, "node 'h': shapes [N, 3] and [4] do not broadcast"},
      {"AddNShapeMismatch", Base(R"(
          parameters { name: "v" shape: [4] }
          nodes { name: "s" op: "add_n" inputs: ["w", "v"] })"),
       kInvalid, "node 's': input 1 has shape [4], expected [3]"},
      {"TooManyInputs", Base(R"(nodes { name: "s" op: "add_n" inputs: ["w", "w", "w"] })"),
       kExhausted, "node 's': 3 inputs, more than the limit of 2",
       Limits([](GraphLimits& l) { l.max_inputs_per_node = 2; })},
      {"TooManyNodes", Base(R"(
          nodes { name: "a" op: "add" inputs: ["x", "w"] }
          nodes { name: "b" op: "add" inputs: ["a", "w"] }
          nodes { name: "c" op: "add" inputs: ["b", "w"] })"),
       kExhausted, "graph 'g': 3 nodes, more than the limit of 2",
       Limits([](GraphLimits& l) { l.max_nodes = 2; })},
      {"NodeOutputTooLarge", R"(
          placeholders { name: "a" shape: [2, 1] }
          placeholders { name: "b" shape: [1, 3] }
          nodes { name: "h" op: "add" inputs: ["a", "b"] })",
       kExhausted, "node 'h': output: shape [2, 3] has more than 5 elements",
       Limits([](GraphLimits& l) { l.max_tensor_elements = 5; })},
      // Placeholders and parameters.
      {"PlaceholderOpenInnerDim", R"(placeholders { name: "x" shape: [3, -1] })", kInvalid,
       "placeholder 'x': dimension 1 is -1 (only dimension 0 may be -1"},
      {"PlaceholderZeroDim", R"(placeholders { name: "x" shape: [0, 3] })", kInvalid,
       "placeholder 'x': dimension 0 is 0"},
      {"PlaceholderRankTooHigh", R"(placeholders { name: "x" shape: [1, 1, 1, 1, 1, 1, 1, 1, 1] })",
       kExhausted, "placeholder 'x': rank 9 is more than the limit of 8"},
      {"PlaceholderTooManyElements", R"(placeholders { name: "big" shape: [-1, 100000, 100000] })",
       kExhausted, "placeholder 'big': shape [N, 100000, 100000] has more than 268435456 elements"},
      {"ParameterOpenDim", R"(parameters { name: "w" shape: [-1, 3] })", kInvalid,
       "parameter 'w': dimension 0 is -1"},
      {"ParameterDimsOverflow",
       R"(parameters { name: "huge" shape: [4294967296, 4294967296, 4294967296] })", kExhausted,
       "parameter 'huge': shape [4294967296, 4294967296, 4294967296] has more than"},
      {"ParametersTotalTooLarge", Base(R"(parameters { name: "v" shape: [8] })"), kExhausted,
       "parameter 'v': brings the parameters to 11 elements, more than the limit of 10",
       Limits([](GraphLimits& l) { l.max_total_parameter_elements = 10; })},
      // Initializers.
      {"UniformLowAboveHigh",
       R"(parameters { name: "w" shape: [3] init { uniform { low: 1 high: 0 } } })", kInvalid,
       "parameter 'w': uniform initializer has low 1 > high 0"},
      {"NormalNegativeStddev",
       R"(parameters { name: "w" shape: [3] init { normal { stddev: -1 } } })", kInvalid,
       "parameter 'w': normal initializer has stddev -1 < 0"},
      {"FillNaN", R"(parameters { name: "w" shape: [3] init { constant { value: nan } } })",
       kInvalid, "parameter 'w': constant initializer is NaN"},
      {"GlorotUnknownDistribution",
       R"(parameters { name: "w" shape: [3] init { glorot { distribution: 5 } } })", kInvalid,
       "parameter 'w': glorot initializer: unknown distribution 5"},
      {"ValueWrongShape",
       std::string(R"(
          parameters { name: "w" shape: [3]
                       init { value { shape: [2] data: )") +
           kZeros8 + " } } }",
       kInvalid, "parameter 'w': initial value has shape [2], expected [3]"},
      {"ValueTruncated",
       std::string(R"(
          parameters { name: "w" shape: [3]
                       init { value { shape: [3] data: )") +
           kZeros8 + " } } }",
       kInvalid, "parameter 'w': initial value: data has 8 bytes, expected 12"},
      {"ValueUnknownDtype",
       std::string(R"(
          parameters { name: "w" shape: [3]
                       init { value { shape: [3] dtype: 9 data: )") +
           kZeros12 + " } } }",
       kInvalid, "parameter 'w': initial value: unknown dtype 9"},
      {"ValueInf", R"(
          parameters { name: "w" shape: [2]
                       init { value { shape: [2] data: "\000\000\000\000\000\000\200\177" } } })",
       kInvalid, "parameter 'w': initial value: element 1 is +Inf"},
      // Constants.
      {"ConstantWrongByteLength",
       R"(constants { name: "c" value { shape: [3] data: "\000\000\000\000\000" } })", kInvalid,
       "constant 'c': data has 5 bytes, expected 12 (shape [3], float32)"},
      {"ConstantFloat64ByteLength",
       std::string(R"(
          constants { name: "c" value { shape: [2] dtype: FLOAT64 data: )") +
           kZeros8 + " } }",
       kInvalid, "constant 'c': data has 8 bytes, expected 16 (shape [2], float64)"},
      {"ConstantNegativeDim", R"(constants { name: "c" value { shape: [-2] } })", kInvalid,
       "constant 'c': dimension 0 is -2"},
      {"ConstantNaN", R"(constants { name: "c" value { data: "\000\000\300\177" } })", kInvalid,
       "constant 'c': element 0 is NaN"},
      {"ConstantDimsOverflow",
       R"(constants { name: "c" value { shape: [4294967296, 4294967296, 4294967296] } })",
       kExhausted, "constant 'c': shape [4294967296, 4294967296, 4294967296] has more than"},
      // Outputs and the loss.
      {"UnknownOutput", Base(R"(outputs: "z")"), kInvalid, "output 'z' is not defined"},
      {"OutputTwice",
       Base(R"(nodes { name: "h" op: "add" inputs: ["x", "w"] } outputs: ["h", "h"])"), kInvalid,
       "output 'h' is listed twice"},
      {"UndefinedLoss", Base(R"(loss: "l")"), kInvalid, "loss 'l' is not defined"},
      {"LossNotScalar", Base(R"(nodes { name: "h" op: "add" inputs: ["x", "w"] } loss: "h")"),
       kInvalid, "loss 'h': has shape [N, 3]; a loss must be a scalar"},
      {"LossWithBatchDim", R"(placeholders { name: "b" shape: [-1] } loss: "b")", kInvalid,
       "loss 'b': has shape [N]"},
  };
}

class ImportFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(ImportFaultTest, ReportsCodeAndNamesTheCulprit) {
  const FaultCase& c = GetParam();
  const backflow::v1::Graph proto = MustParse(c.text);
  StatusOr<Graph> graph = ImportGraph(proto, c.limits);
  ASSERT_FALSE(graph.ok()) << c.text;
  EXPECT_EQ(graph.status().code(), c.code) << graph.status().ToString();
  EXPECT_NE(graph.status().message().find(c.message), std::string::npos)
      << "message: " << graph.status().message() << "\nexpected to contain: " << c.message;
}

INSTANTIATE_TEST_SUITE_P(Faults, ImportFaultTest, ::testing::ValuesIn(FaultCases()),
                         [](const ::testing::TestParamInfo<FaultCase>& info) {
                           return info.param.name;
                         });

TEST(ImportFaultTableTest, HasAtLeastTwentyFiveCases) { EXPECT_GE(FaultCases().size(), 25u); }

std::vector<std::string> NodeNames(const Graph& graph) {
  std::vector<std::string> names;
  for (const Node& node : graph.nodes()) names.push_back(node.name);
  return names;
}

TEST(ImportGraphTest, SortsNodesTopologicallyKeepingProtoOrderForTies) {
  const backflow::v1::Graph proto = MustParse(Base(R"(
      nodes { name: "c" op: "add" inputs: ["b", "w"] }
      nodes { name: "b" op: "mul" inputs: ["a", "w"] }
      nodes { name: "a" op: "sub" inputs: ["x", "w"] }
      nodes { name: "e" op: "add" inputs: ["x", "w"] }
      nodes { name: "d" op: "add" inputs: ["x", "w"] }
      outputs: ["c", "d"])"));
  StatusOr<Graph> graph = ImportGraph(proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(NodeNames(*graph), (std::vector<std::string>{"a", "b", "c", "e", "d"}));
  for (const Node& node : graph->nodes()) {
    for (ValueId in : node.inputs) {
      const Value& input = graph->value(in);
      if (input.kind == ValueKind::kNode) {
        EXPECT_LT(input.producer, graph->value(node.output).producer);
      }
    }
  }
  ASSERT_EQ(graph->outputs().size(), 2u);
  EXPECT_EQ(graph->value(graph->outputs()[0]).name, "c");
  EXPECT_EQ(graph->value(graph->outputs()[1]).name, "d");
  EXPECT_EQ(graph->name, "g");
}

TEST(ImportGraphTest, KeepsAnOrderedGraphAsItIs) {
  const backflow::v1::Graph proto = MustParse(Base(R"(
      nodes { name: "z" op: "add" inputs: ["x", "w"] }
      nodes { name: "y" op: "mul" inputs: ["z", "w"] }
      nodes { name: "q" op: "sub" inputs: ["x", "w"] }
      nodes { name: "p" op: "add_n" inputs: ["y", "q", "z"] })"));
  StatusOr<Graph> graph = ImportGraph(proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(NodeNames(*graph), (std::vector<std::string>{"z", "y", "q", "p"}));
}

TEST(ImportGraphTest, OpenBatchDimensionPropagates) {
  const backflow::v1::Graph proto = MustParse(Base(R"(
      parameters { name: "s" shape: [1, 1] }
      nodes { name: "h" op: "add" inputs: ["x", "w"] }
      nodes { name: "k" op: "mul" inputs: ["h", "s"] })"));
  StatusOr<Graph> graph = ImportGraph(proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->value(*graph->Find("h")).shape, Shape({kBatchDim, 3}));
  EXPECT_EQ(graph->value(*graph->Find("k")).shape, Shape({kBatchDim, 3}));
  EXPECT_EQ(graph->value(*graph->Find("x")).kind, ValueKind::kPlaceholder);
}

TEST(ImportGraphTest, PlaceholdersDeclareIntegerDtypes) {
  const backflow::v1::Graph proto = MustParse(Base(R"(
      placeholders { name: "ids" shape: [-1] dtype: INT64 }
      placeholders { name: "small" shape: [2] dtype: INT32 }
      placeholders { name: "f" shape: [2] dtype: FLOAT64 })"));
  StatusOr<Graph> graph = ImportGraph(proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->value(*graph->Find("ids")).dtype, DType::kInt64);
  EXPECT_EQ(graph->value(*graph->Find("small")).dtype, DType::kInt32);
  EXPECT_EQ(graph->value(*graph->Find("f")).dtype, DType::kFloat32);  // the model's float dtype
  EXPECT_EQ(graph->value(*graph->Find("x")).dtype, DType::kFloat32);
  const StatusOr<Graph> refused = ImportGraph(MustParse(Base(R"(
      placeholders { name: "ids" shape: [3] dtype: INT64 }
      nodes { name: "s" op: "add" inputs: ["w", "ids"] })")));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find(
                "node 's': input 1 ('ids') is int64, but op 'add' takes a float tensor there"),
            std::string::npos)
      << refused.status().message();
}

TEST(ImportGraphTest, AcceptsAScalarLossIncludingShapeOneByOne) {
  const backflow::v1::Graph proto = MustParse(R"(
      parameters { name: "a" shape: [1, 1] }
      parameters { name: "b" }
      nodes { name: "l" op: "mul" inputs: ["a", "b"] }
      loss: "l")");
  StatusOr<Graph> graph = ImportGraph(proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->loss(), *graph->Find("l"));
  EXPECT_EQ(graph->value(graph->loss()).shape, Shape({1, 1}));
}

TEST(ImportGraphTest, MapsInitializers) {
  const backflow::v1::Graph proto = MustParse(R"(
      parameters { name: "zeros" shape: [2] }
      parameters { name: "fill" shape: [2] init { constant { value: 0.5 } } }
      parameters { name: "uniform" shape: [2] init { uniform { low: -2 high: 3 } } }
      parameters { name: "normal" shape: [2] init { normal { mean: 1 stddev: 0.25 } } }
      parameters { name: "glorot" shape: [2, 2] init { glorot {} } }
      parameters { name: "glorot2" shape: [2]
                   init { glorot { distribution: DISTRIBUTION_NORMAL gain: 2 } } }
      parameters { name: "he" shape: [2] init { he { distribution: DISTRIBUTION_NORMAL } } }
      parameters { name: "value" shape: [1]
                   init { value { shape: 1 data: "\000\000\200\077" } } })");
  StatusOr<Graph> graph = ImportGraph(proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  auto init = [&](const char* name) { return graph->value(*graph->Find(name)).init; };
  using Kind = InitializerSpec::Kind;
  EXPECT_EQ(init("zeros").kind, Kind::kZeros);
  EXPECT_EQ(init("fill").kind, Kind::kConstant);
  EXPECT_EQ(init("fill").a, 0.5);
  EXPECT_EQ(init("uniform").kind, Kind::kUniform);
  EXPECT_EQ(init("uniform").a, -2);
  EXPECT_EQ(init("uniform").b, 3);
  EXPECT_EQ(init("normal").kind, Kind::kNormal);
  EXPECT_EQ(init("normal").a, 1);
  EXPECT_EQ(init("normal").b, 0.25);
  EXPECT_EQ(init("glorot").kind, Kind::kGlorot);
  EXPECT_EQ(init("glorot").a, 1.0);  // gain 0 means 1
  EXPECT_FALSE(init("glorot").normal);
  EXPECT_EQ(init("glorot2").a, 2.0);
  EXPECT_TRUE(init("glorot2").normal);
  EXPECT_EQ(init("he").kind, Kind::kHe);
  EXPECT_TRUE(init("he").normal);
  EXPECT_EQ(init("value").kind, Kind::kValue);
  ASSERT_NE(init("value").value, nullptr);
  EXPECT_EQ(init("value").value->at(0), 1.0);
}

TEST(ImportGraphTest, KeepsConstantValues) {
  // 1.0 and -2.0 as little-endian float64.
  const backflow::v1::Graph proto = MustParse(R"(
      constants { name: "c" value { shape: [2] dtype: FLOAT64
          data: "\000\000\000\000\000\000\360\077\000\000\000\000\000\000\000\300" } }
      nodes { name: "s" op: "add_n" inputs: ["c", "c"] })");
  StatusOr<Graph> graph = ImportGraph(proto);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const Value& c = graph->value(*graph->Find("c"));
  ASSERT_NE(c.constant, nullptr);
  EXPECT_EQ(c.constant->dtype(), DType::kFloat64);
  EXPECT_EQ(c.constant->ToDoubles(), (std::vector<double>{1.0, -2.0}));
  EXPECT_EQ(graph->node(0).inputs.size(), 2u);
}

TEST(ParseGraphTextTest, ReportsLineAndColumn) {
  StatusOr<backflow::v1::Graph> graph = ParseGraphText("name: \"g\"\nnodes { nme: \"h\" }\n");
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(graph.status().message().find("graph text:2:"), std::string::npos)
      << graph.status().message();
  EXPECT_NE(graph.status().message().find("nme"), std::string::npos) << graph.status().message();
}

class LoadGraphTextTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& file, const std::string& text) {
    const std::string path = ::testing::TempDir() + "/import_test_" + file;
    std::ofstream(path) << text;
    written_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& path : written_) std::remove(path.c_str());
  }
  std::vector<std::string> written_;
};

TEST_F(LoadGraphTextTest, LoadsAFile) {
  const std::string path =
      Write("ok.pbtxt", Base("nodes { name: 'h' op: 'add' inputs: ['x', 'w'] }\n"));
  StatusOr<backflow::v1::Graph> proto = LoadGraphText(path);
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  EXPECT_EQ(proto->name(), "g");
  ASSERT_EQ(proto->nodes_size(), 1);
  EXPECT_EQ(proto->nodes(0).op(), "add");
  EXPECT_TRUE(ImportGraph(*proto).ok());
}

TEST_F(LoadGraphTextTest, EmptyFileIsAnEmptyGraph) {
  StatusOr<backflow::v1::Graph> proto = LoadGraphText(Write("empty.pbtxt", ""));
  ASSERT_TRUE(proto.ok()) << proto.status().ToString();
  EXPECT_EQ(proto->nodes_size(), 0);
}

TEST_F(LoadGraphTextTest, MissingFileIsNotFound) {
  StatusOr<backflow::v1::Graph> proto =
      LoadGraphText(::testing::TempDir() + "/import_test_does_not_exist.pbtxt");
  ASSERT_FALSE(proto.ok());
  EXPECT_EQ(proto.status().code(), StatusCode::kNotFound);
  EXPECT_NE(proto.status().message().find("import_test_does_not_exist.pbtxt"), std::string::npos);
}

TEST_F(LoadGraphTextTest, ParseErrorNamesPathLineAndColumn) {
  const std::string path = Write("bad.pbtxt", "name: \"g\"\nplaceholders { name: }\n");
  StatusOr<backflow::v1::Graph> proto = LoadGraphText(path);
  ASSERT_FALSE(proto.ok());
  EXPECT_EQ(proto.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(proto.status().message().find(path + ":2:"), std::string::npos)
      << proto.status().message();
}

}  // namespace
}  // namespace backflow
