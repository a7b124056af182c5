// backflow-bench, the measuring half of bench/run: each subcommand against real models and a
// backflow-server child process on 127.0.0.1, checked for values it must reproduce (the seeds'
// circuit, the same first loss in process and over the wire), not for speed: figures belong to
// bench/run, never to a timed unit test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/process/process_fixture.h"
#include "tests/process/run_command.h"

namespace backflow {
namespace {

using nlohmann::json;

const std::string kModels = std::string(BACKFLOW_SOURCE_DIR) + "/models/";
constexpr double kStagedF = 1.5456448841;  // f(3, -4), GOLDEN

// Runs backflow-bench and returns its last stdout line as JSON (null on failure, with a test
// failure naming the output).
json Bench(const std::vector<std::string>& args) {
  const testing::CommandResult r =
      testing::RunCommand(BACKFLOW_BENCH_BINARY, args, std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r;
  // The last line (oneDNN's verbose output, when enabled, may come before it).
  const size_t end = r.out.find_last_not_of('\n');
  const size_t start = end == std::string::npos ? 0 : r.out.rfind('\n', end) + 1;
  if (r.exit_code != 0 || end == std::string::npos) return nullptr;
  return json::parse(r.out.substr(start, end + 1 - start), nullptr, /*allow_exceptions=*/false);
}

TEST(BenchHarnessTest, EngineTrainStepsTheStagedCircuitFromTheSeedsPoint) {
  const json j = Bench({"engine-train", "--model", kModels + "staged_circuit.pbtxt", "--batch",
                        "1", "--seconds", "0", "--warmup", "1", "--min-steps", "50"});
  ASSERT_TRUE(j.is_object());
  EXPECT_NEAR(j["first_loss"].get<double>(), kStagedF, 1e-6);
  EXPECT_GE(j["steps"].get<int64_t>(), 50);
  EXPECT_GT(j["samples_per_s"].get<double>(), 0);
  EXPECT_LE(j["compute_cores_peak"].get<int>(), j["cores"].get<int>());
  EXPECT_EQ(j["forward_flops_per_sample"].get<int64_t>(), 8);  // the circuit's eight nodes
}

TEST(BenchHarnessTest, SgemmCountsTwoNCubedFlopsPerCall) {
  const json j = Bench({"sgemm", "--size", "128", "--seconds", "0", "--warmup", "1",
                        "--min-steps", "5"});
  ASSERT_TRUE(j.is_object());
  EXPECT_GE(j["calls"].get<int64_t>(), 5);
  const double expected =
      2.0 * 128 * 128 * 128 * j["calls"].get<double>() / j["seconds"].get<double>() / 1e9;
  EXPECT_NEAR(j["gflop_per_s"].get<double>(), expected, 1e-6 * expected);
}

TEST(BenchHarnessTest, UnknownSubcommandOrFlagIsAUsageError) {
  EXPECT_EQ(testing::RunCommand(BACKFLOW_BENCH_BINARY, {"nope"}, std::chrono::seconds(30))
                .exit_code,
            2);
  EXPECT_EQ(testing::RunCommand(BACKFLOW_BENCH_BINARY, {"sgemm", "--sise", "4"},
                                std::chrono::seconds(30))
                .exit_code,
            2);
}

class BenchHarnessServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GT(server_.Start(data_dir_.path()), 0); }
  testing::ProcessTempDir data_dir_;
  testing::ServerProcess server_;
};

TEST_F(BenchHarnessServerTest, LatencyRunsTheCircuitAgainstTheHealthFloor) {
  for (const std::string rpc : {"trainstep", "evaluate"}) {
    const json j = Bench({"latency", "--rpc", rpc, "--server", server_.address(), "--model",
                          kModels + "staged_circuit.pbtxt", "--graph",
                          kModels + "seeds/staged.pbtxt", "--calls", "40", "--warmup", "5",
                          "--server-pid", std::to_string(server_.pid())});
    ASSERT_TRUE(j.is_object()) << rpc;
    EXPECT_NEAR(j["first_value"].get<double>(), kStagedF, 1e-6) << rpc;
    EXPECT_EQ(j[rpc]["calls"].get<int64_t>(), 40);
    EXPECT_EQ(j["health"]["calls"].get<int64_t>(), 40);
    EXPECT_LE(j[rpc]["p50_us"].get<double>(), j[rpc]["p99_us"].get<double>());
    EXPECT_GT(j["server_threads"]["samples"].get<int64_t>(), 0);
  }
}

// The same model, seed, synthetic batches and optimizer in process and over the Train stream:
// the first step's loss is the same number, bitwise; two jobs train two models at once.
TEST_F(BenchHarnessServerTest, TrainOverTheStreamStartsWhereTheEngineStarts) {
  const std::string mlp = kModels + "mlp_tanh.pbtxt";
  const json engine = Bench({"engine-train", "--model", mlp, "--batch", "8", "--seconds", "0",
                             "--warmup", "1", "--min-steps", "1"});
  const json wire = Bench({"train", "--server", server_.address(), "--model", mlp, "--batch", "8",
                           "--jobs", "2", "--seconds", "0", "--warmup", "2", "--min-steps", "10"});
  ASSERT_TRUE(engine.is_object());
  ASSERT_TRUE(wire.is_object());
  ASSERT_EQ(wire["jobs"].size(), 2u);
  double total = 0;
  for (const json& job : wire["jobs"]) {
    EXPECT_EQ(job["first_loss"].get<double>(), engine["first_loss"].get<double>());
    EXPECT_GE(job["steps"].get<int64_t>(), 10);
    total += job["samples_per_s"].get<double>();
  }
  EXPECT_DOUBLE_EQ(wire["samples_per_s"].get<double>(), total);
}

// Integer placeholders (token ids, int64 labels) get ids of their own dtype in process as over
// the wire, labels within the logits' width (2 classes here, where 10 would be out of range):
// the Transformer's first loss is the same number both ways, and near ln 2 for two classes.
TEST_F(BenchHarnessServerTest, IntegerPlaceholdersGetValidIdsInProcessAndOverTheWire) {
  const std::string transformer = kModels + "transformer_repeat.pbtxt";
  const json engine = Bench({"engine-train", "--model", transformer, "--batch", "8", "--seconds",
                             "0", "--warmup", "1", "--min-steps", "1"});
  const json wire = Bench({"train", "--server", server_.address(), "--model", transformer,
                           "--batch", "8", "--seconds", "0", "--warmup", "1", "--min-steps", "2"});
  ASSERT_TRUE(engine.is_object());
  ASSERT_TRUE(wire.is_object());
  const double first = engine["first_loss"].get<double>();
  EXPECT_EQ(wire["jobs"][0]["first_loss"].get<double>(), first);
  EXPECT_LT(std::abs(first - std::log(2.0)), 0.5) << first;
}

TEST_F(BenchHarnessServerTest, InferAtConcurrencyFourThroughEitherProtocol) {
  for (const std::string protocol : {"backflow", "oip"}) {
    const json j = Bench({"infer", "--server", server_.address(), "--model",
                          kModels + "lenet5.pbtxt", "--batch", "4", "--concurrency", "4",
                          "--seconds", "0.2", "--warmup", "1", "--protocol", protocol});
    ASSERT_TRUE(j.is_object()) << protocol;
    EXPECT_EQ(j["protocol"].get<std::string>(), protocol);
    EXPECT_EQ(j["concurrency"].get<int>(), 4);
    EXPECT_GE(j["calls"].get<int64_t>(), 4);
    EXPECT_NEAR(j["samples_per_s"].get<double>(),
                j["calls"].get<double>() * 4 / j["seconds"].get<double>(), 1e-6);
  }
}

}  // namespace
}  // namespace backflow
