// `backflow eval` on every circuit of models/seeds/ against the GOLDEN values (the case table of
// tests/engine/golden_test.cc): the CLI's --json output must match to 1e-9 relative in float64.
#include <cmath>
#include <fstream>
#include <map>

#include "clients/cli/npy.h"
#include "tests/clients/cli_fixture.h"
#include "tests/testing/golden_cases.h"

namespace backflow::testing {
namespace {

// The golden values have ten significant digits; 1e-9 relative leaves room for their rounding.
constexpr double kTolerance = 1e-9;

std::string FormatNumber(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

class CliEvalTest : public CliTest, public ::testing::WithParamInterface<GoldenCase> {};

TEST_P(CliEvalTest, JsonMatchesTheGoldenValues) {
  const GoldenCase& c = GetParam();
  std::vector<std::string> args = {"eval", Source("models/seeds/" + c.file + ".pbtxt"), "--json"};
  for (const auto& [name, value] : c.inputs) {
    args.insert(args.end(), {"--set", name + "=" + FormatNumber(value)});
  }
  for (const auto& [name, _] : c.gradients) args.insert(args.end(), {"--wrt", name});
  const CliResult result = Cli(args);
  ASSERT_EQ(result.exit_code, 0) << result;
  // Exactly one JSON object on stdout.
  const nlohmann::json json = nlohmann::json::parse(result.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << result.out;
  ASSERT_TRUE(json["outputs"].is_object()) << result.out;
  ASSERT_EQ(json["outputs"].size(), 1u) << result.out;  // the output is the loss
  const nlohmann::json& output = json["outputs"].begin().value();
  ASSERT_TRUE(output.is_number()) << "scalars are plain numbers: " << result.out;
  EXPECT_LE(RelativeError(output.get<double>(), c.output), kTolerance) << result.out;
  ASSERT_EQ(json["gradients"].size(), c.gradients.size()) << result.out;
  for (const auto& [name, expected] : c.gradients) {
    ASSERT_TRUE(json["gradients"][name].is_number()) << name << ": " << result.out;
    EXPECT_LE(RelativeError(json["gradients"][name].get<double>(), expected), kTolerance)
        << "d/d" << name << " in " << result.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, CliEvalTest, ::testing::ValuesIn(GoldenCases()),
                         [](const auto& info) { return info.param.file; });

class CliEvalTextTest : public CliTest {};

// The example: gradients default to every name given with --set.
TEST_F(CliEvalTextTest, PrintsOutputsAndGradientsReadably) {
  const CliResult result =
      Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set", "x=3", "--set", "y=-4"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "f = 1.545644884\ndf/dx = 2.059569796\ndf/dy = 1.592232751\n");
}

TEST_F(CliEvalTextTest, TakesListsAndNpyFilesAndFloat32) {
  ProcessTempDir dir;
  const std::string x_file = dir.path() + "/x.npy";
  // A float32 file for a float64 evaluation: the CLI casts it.
  ASSERT_TRUE(cli::WriteNpy(x_file, Tensor::Scalar(DType::kFloat32, 3)).ok());
  const nlohmann::json from_file =
      nlohmann::json::parse(Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set",
                                 "x=" + x_file, "--set", "y=-4", "--json"})
                                .out);
  EXPECT_LE(RelativeError(from_file["gradients"]["x"].get<double>(), 2.0595697956), kTolerance);

  // A comma list is a 1-d tensor; non-scalar results come as {"shape", "values"}.
  const std::string graph = dir.path() + "/squares.pbtxt";
  std::ofstream(graph) << "placeholders { name: 'x' shape: [3] }\n"
                          "nodes { name: 'sq' op: 'square' inputs: 'x' }\n"
                          "nodes { name: 's' op: 'sum' inputs: 'sq' }\n"
                          "outputs: ['sq', 's']\nloss: 's'\n";
  const CliResult lists = Cli({"eval", graph, "--set", "x=1,2,-4", "--json"});
  ASSERT_EQ(lists.exit_code, 0) << lists;
  const nlohmann::json json = nlohmann::json::parse(lists.out);
  EXPECT_EQ(json["outputs"]["s"], 21.0) << lists.out;
  EXPECT_EQ(json["outputs"]["sq"], nlohmann::json({{"shape", {3}}, {"values", {1.0, 4.0, 16.0}}}));
  EXPECT_EQ(json["gradients"]["x"], nlohmann::json({{"shape", {3}}, {"values", {2.0, 4.0, -8.0}}}));
  const CliResult text = Cli({"eval", graph, "--set", "x=1,2,-4"});
  EXPECT_EQ(text.out, "sq [3] = 1, 4, 16\ns = 21\nds/dx [3] = 2, 4, -8\n") << text;

  const CliResult f32 = Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set", "x=3", "--set",
                             "y=-4", "--dtype", "float32", "--json"});
  ASSERT_EQ(f32.exit_code, 0) << f32;
  const double f = nlohmann::json::parse(f32.out)["outputs"]["f"];
  EXPECT_LE(RelativeError(f, 1.5456448841), 1e-6);
  EXPECT_GT(RelativeError(f, 1.5456448841), 0) << "float32 rounding must show";
}

// An int64 .npy file of ids feeds an integer placeholder as it is; repeated ids sum their rows'
// gradients.
TEST_F(CliEvalTextTest, TakesInt64NpyIds) {
  ProcessTempDir dir;
  const std::string w_file = dir.path() + "/w.npy";
  const std::string ids_file = dir.path() + "/ids.npy";
  ASSERT_TRUE(cli::WriteNpy(w_file, Tensor::FromValues(DType::kFloat64, Shape{3, 2},
                                                       std::vector<double>{1, 2, 3, 4, 5, 6}))
                  .ok());
  ASSERT_TRUE(cli::WriteNpy(ids_file, Tensor::FromValues(DType::kInt64, Shape{3},
                                                         std::vector<double>{2, 0, 2}))
                  .ok());
  const std::string graph = dir.path() + "/emb.pbtxt";
  std::ofstream(graph) << "placeholders { name: 'w' shape: [3, 2] }\n"
                          "placeholders { name: 'ids' shape: [3] dtype: INT64 }\n"
                          "nodes { name: 'e' op: 'embedding' inputs: ['w', 'ids'] }\n"
                          "nodes { name: 's' op: 'sum' inputs: 'e' }\n"
                          "outputs: ['e', 's']\nloss: 's'\n";
  const CliResult result = Cli({"eval", graph, "--set", "w=" + w_file, "--set",
                                "ids=" + ids_file, "--wrt", "w", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["outputs"]["e"],
            nlohmann::json({{"shape", {3, 2}}, {"values", {5.0, 6.0, 1.0, 2.0, 5.0, 6.0}}}));
  EXPECT_EQ(json["gradients"]["w"],
            nlohmann::json({{"shape", {3, 2}}, {"values", {1.0, 1.0, 0.0, 0.0, 2.0, 2.0}}}));
}

TEST_F(CliEvalTextTest, ReportsServerAndInputErrors) {
  const CliResult missing = Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set", "x=3"});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_NE(missing.err.find("INVALID_ARGUMENT"), std::string::npos) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;

  const CliResult bad_value =
      Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set", "x=three"});
  EXPECT_EQ(bad_value.exit_code, 1) << bad_value;
  EXPECT_NE(bad_value.err.find("'three' is neither a number"), std::string::npos) << bad_value.err;

  const CliResult no_graph = Cli({"eval", "/nonexistent/graph.pbtxt"});
  EXPECT_EQ(no_graph.exit_code, 1) << no_graph;
  EXPECT_NE(no_graph.err.find("/nonexistent/graph.pbtxt"), std::string::npos) << no_graph.err;

  const CliResult bad_mode = Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set", "x=3",
                                  "--set", "y=-4", "--mode", "eval"});
  EXPECT_EQ(bad_mode.exit_code, 2) << bad_mode;
  EXPECT_NE(bad_mode.err.find("--mode: 'eval' is not training or inference"), std::string::npos)
      << bad_mode.err;
  // A graph without mode-dependent gates gives the same values in both modes.
  const CliResult inference = Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set", "x=3",
                                   "--set", "y=-4", "--mode", "inference"});
  const CliResult training = Cli({"eval", Source("models/seeds/staged.pbtxt"), "--set", "x=3",
                                  "--set", "y=-4", "--mode", "training"});
  EXPECT_EQ(inference.exit_code, 0) << inference;
  EXPECT_EQ(inference.out, training.out);
}

}  // namespace
}  // namespace backflow::testing
