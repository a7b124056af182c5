// `backflow gradcheck`: its table and JSON, and its exit codes (0 agree, 1 disagree, 2 usage).
#include <fstream>

#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

using CliGradcheckTest = CliTest;

// loss = sum(relu(w * x)), w = 1: at x = 0 relu has a kink, where the analytic gradient (relu's
// derivative taken as 0 there) and the centred difference ((h - 0) / 2h = 0.5) disagree.
std::string KinkGraph(const ProcessTempDir& dir) {
  const std::string path = dir.path() + "/kink.pbtxt";
  std::ofstream(path) << "placeholders { name: 'x' shape: [3] }\n"
                         "parameters { name: 'w' shape: [3] init { constant { value: 1 } } }\n"
                         "nodes { name: 'wx' op: 'mul' inputs: ['w', 'x'] }\n"
                         "nodes { name: 'r' op: 'relu' inputs: 'wx' }\n"
                         "nodes { name: 'loss' op: 'sum' inputs: 'r' }\n"
                         "loss: 'loss'\n";
  return path;
}

TEST_F(CliGradcheckTest, AgreeingGradientsPrintATableAndExitZero) {
  const CliResult result =
      Cli({"gradcheck", Source("models/mlp_tanh.pbtxt"), "--wrt", "w2,b2", "--seed", "4"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("85 forward runs; drawn: b1, b2, images, labels, w1, w2"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("w2                         32/2560"), std::string::npos) << result;
  EXPECT_NE(result.out.find("b2                           10/10"), std::string::npos) << result;
  EXPECT_TRUE(result.out.ends_with("\nall 2 tensors agree\n")) << result.out;
}

TEST_F(CliGradcheckTest, ADisagreeingTensorIsNamedAndExitsOne) {
  ProcessTempDir dir;
  const std::string graph = KinkGraph(dir);
  const CliResult result = Cli({"gradcheck", graph, "--input", "x=0,2,-1", "--wrt", "w,x"});
  ASSERT_EQ(result.exit_code, 1) << result;
  EXPECT_NE(result.out.find("x                              3/3            1          0.5  "
                            "MISMATCH"),
            std::string::npos)
      << result.out;
  EXPECT_NE(
      result.out.find("  x[0]                                    0              0.5  rel 1\n"),
      std::string::npos)
      << result.out;
  EXPECT_TRUE(result.out.ends_with("\n1 of 2 tensors disagree: x\n")) << result.out;

  const nlohmann::json json = nlohmann::json::parse(
      Cli({"gradcheck", graph, "--input", "x=0,2,-1", "--wrt", "x", "--worst", "1", "--json"}).out);
  EXPECT_EQ(json["ok"], false);
  EXPECT_EQ(json["loss"], 2.0);
  EXPECT_EQ(json["evaluations"], 7);
  EXPECT_EQ(json["drawn"], nlohmann::json::array({"w"}));
  ASSERT_EQ(json["tensors"].size(), 1u);
  const nlohmann::json& x = json["tensors"][0];
  EXPECT_EQ(x["name"], "x");
  EXPECT_EQ(x["ok"], false);
  ASSERT_EQ(x["worst"].size(), 1u);
  EXPECT_EQ(x["worst"][0]["index"], 0);
  EXPECT_EQ(x["worst"][0]["analytic"], 0.0);
  EXPECT_NEAR(x["worst"][0]["numeric"].get<double>(), 0.5, 1e-9);
  EXPECT_EQ(x["worst"][0]["relative_error"].get<double>(), x["max_relative_error"]);
}

TEST_F(CliGradcheckTest, UsageAndServerErrors) {
  ProcessTempDir dir;
  const std::string graph = KinkGraph(dir);
  EXPECT_EQ(Cli({"gradcheck"}).exit_code, 2);
  EXPECT_EQ(Cli({"gradcheck", graph, "--model", "m-1"}).exit_code, 2);
  const CliResult epsilon = Cli({"gradcheck", graph, "--epsilon", "0"});
  EXPECT_EQ(epsilon.exit_code, 2) << epsilon;
  EXPECT_NE(epsilon.err.find("--epsilon: must be positive"), std::string::npos) << epsilon;
  EXPECT_EQ(Cli({"gradcheck", graph, "--elements", "0"}).exit_code, 2);
  const CliResult wrt = Cli({"gradcheck", graph, "--wrt", "nope"});
  EXPECT_EQ(wrt.exit_code, 1) << wrt;
  EXPECT_NE(wrt.err.find("INVALID_ARGUMENT: wrt 'nope' is not in the graph"), std::string::npos)
      << wrt;
  const CliResult model = Cli({"gradcheck", "--model", "m-nope"});
  EXPECT_EQ(model.exit_code, 1) << model;
  EXPECT_NE(model.err.find("NOT_FOUND"), std::string::npos) << model;
}

}  // namespace
}  // namespace backflow::testing
