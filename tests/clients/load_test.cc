// backflow-load against a real backflow-server child process: the counts the load generator
// reports per RPC kind equal what the server logged (one debug line per OK request, one warn
// line per client error), the open loop keeps its schedule, errors are counted by code, and
// the exit codes tell setup failures from usage errors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/process/process_fixture.h"
#include "tests/process/run_command.h"

namespace backflow {
namespace {

using nlohmann::json;
using testing::ProcessTempDir;
using testing::ServerProcess;

const std::string kModel = std::string(BACKFLOW_SOURCE_DIR) + "/models/mlp_tanh.pbtxt";

using ProcessResult = testing::CommandResult;

// Runs BACKFLOW_LOAD_BINARY with `args`, capturing stdout and stderr; killed past `timeout`.
ProcessResult RunLoad(const std::vector<std::string>& args,
                      std::chrono::seconds timeout = std::chrono::seconds(30)) {
  return testing::RunCommand(BACKFLOW_LOAD_BINARY, args, timeout);
}

// Runs backflow-load with --json and parses its report (an empty object after a failure).
json RunLoadJson(const std::vector<std::string>& args) {
  std::vector<std::string> with_json = args;
  with_json.push_back("--json");
  const ProcessResult result = RunLoad(with_json);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  json report = json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object()) {
    ADD_FAILURE() << "not a JSON object:\n" << result.out << "\nstderr:\n" << result.err;
    return json::object();
  }
  return report;
}

// The server's count of `rpc` answers with `code` ("OK", "NOT_FOUND", ...): its
// backflow_requests_total series on /metrics (the log rate-limits failures, the metrics count
// each). The server counts a call as it finishes, maybe a little after the client saw the
// answer: waits (bounded) until the count reaches `expected`, then returns the count.
int64_t WaitForRequestCount(const ServerProcess& server, const std::string& rpc,
                            const std::string& code, int64_t expected) {
  std::smatch match;
  const std::string log = server.output();
  static const std::regex kMetrics(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)");
  if (!std::regex_search(log, match, kMetrics)) {
    ADD_FAILURE() << "no metrics endpoint in the server's log:\n" << log;
    return -1;
  }
  httplib::Client client("127.0.0.1", std::stoi(match[1]));
  client.set_read_timeout(10, 0);
  const std::string series =
      "backflow_requests_total{code=\"" + code + "\",method=\"" + rpc + "\"} ";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int64_t count = 0;
  while (true) {
    const httplib::Result answer = client.Get("/metrics");
    if (answer && answer->status == 200) {
      const size_t at = answer->body.find(series);
      count = at == std::string::npos ? 0 : std::stoll(answer->body.substr(at + series.size()));
    }
    if (count >= expected || std::chrono::steady_clock::now() >= deadline) return count;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Every report holds these, in the order of the percentiles.
void ExpectOrderedLatencies(const json& stats) {
  const json& latency = stats["latency_ms"];
  ASSERT_TRUE(latency["p50"].is_number()) << latency;
  EXPECT_GT(latency["p50"].get<double>(), 0);
  EXPECT_LE(latency["p50"].get<double>(), latency["p90"].get<double>());
  EXPECT_LE(latency["p90"].get<double>(), latency["p99"].get<double>());
  EXPECT_LE(latency["p99"].get<double>(), latency["p999"].get<double>());
  EXPECT_LE(latency["p999"].get<double>(), latency["max"].get<double>());
}

class LoadTest : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& flags = {}) {
    std::vector<std::string> all = {"--log-level=debug", "--metrics-listen=127.0.0.1:0"};
    all.insert(all.end(), flags.begin(), flags.end());
    ASSERT_GT(server_.Start(data_dir_.path(), all), 0);
  }
  std::string address() const { return server_.address(); }

  // A failure is often explained by the server's side of the story.
  void TearDown() override {
    if (!HasFailure()) return;
    const std::string log = server_.output();
    constexpr size_t kTail = 8000;
    std::cerr << "backflow-server log (last " << kTail << " bytes):\n"
              << (log.size() > kTail ? log.substr(log.size() - kTail) : log) << "\n";
  }

  ProcessTempDir data_dir_;
  ServerProcess server_;
};

TEST_F(LoadTest, ClosedLoopMixedCountsMatchTheServersMetrics) {
  StartServer();
  const json report =
      RunLoadJson({"--server", address(), "--model", kModel, "--rpc", "mixed", "--concurrency", "4",
                   "--duration", "5", "--batch", "16", "--warmup", "0", "--seed", "7"});
  ASSERT_TRUE(report.contains("by_rpc")) << report;
  const std::string model_id = report["settings"]["model_id"];
  ASSERT_FALSE(model_id.empty());
  EXPECT_EQ(report["settings"]["loop"], "closed");
  const double seconds = report["duration_s"];
  EXPECT_GE(seconds, 5.0);
  EXPECT_LT(seconds, 8.0);

  const std::vector<std::pair<std::string, std::string>> kinds = {{"infer", "Infer"},
                                                                  {"train", "TrainStep"},
                                                                  {"gradients", "ComputeGradients"},
                                                                  {"evaluate", "Evaluate"}};
  int64_t sum = 0;
  for (const auto& [kind, rpc] : kinds) {
    SCOPED_TRACE(kind);
    const json& stats = report["by_rpc"][kind];
    const int64_t ok = stats["ok"];
    EXPECT_GT(ok, 0);
    EXPECT_EQ(stats["requests"].get<int64_t>(), ok);
    EXPECT_TRUE(stats["errors"].empty()) << stats["errors"];
    EXPECT_EQ(WaitForRequestCount(server_, rpc, "OK", ok), ok);
    EXPECT_NEAR(stats["samples_per_s"].get<double>(), static_cast<double>(ok) * 16 / seconds,
                1e-6 * static_cast<double>(ok));
    ExpectOrderedLatencies(stats);
    sum += ok;
  }
  EXPECT_EQ(report["total"]["ok"].get<int64_t>(), sum);
  EXPECT_EQ(report["total"]["requests"].get<int64_t>(), sum);
  // The mix is 50/25/15/10: infer, drawn half the time, is the most frequent kind by far.
  EXPECT_GT(report["by_rpc"]["infer"]["ok"].get<int64_t>(), sum / 3);
  EXPECT_LT(report["by_rpc"]["evaluate"]["ok"].get<int64_t>(), sum / 5);
  // The run deletes the model it created.
  EXPECT_EQ(WaitForRequestCount(server_, "DeleteModel", "OK", 1), 1);
}

TEST_F(LoadTest, OpenLoopKeepsItsRateAndMatchesTheServersMetrics) {
  StartServer();
  const json report =
      RunLoadJson({"--server", address(), "--model", kModel, "--rpc", "infer", "--rate", "50",
                   "--duration", "5", "--batch", "16", "--warmup", "0"});
  ASSERT_TRUE(report.contains("by_rpc")) << report;
  EXPECT_FALSE(report["settings"]["model_id"].get<std::string>().empty());
  EXPECT_EQ(report["settings"]["loop"], "open");
  const int64_t requests = report["total"]["requests"];
  const int64_t dropped = report["dropped"];
  EXPECT_EQ(dropped, 0);  // 50/s of small batches never has 1024 calls outstanding
  EXPECT_NEAR(static_cast<double>(requests + dropped), 50.0 * 5, 25.0);
  const int64_t ok = report["by_rpc"]["infer"]["ok"];
  EXPECT_EQ(ok, requests);
  EXPECT_EQ(WaitForRequestCount(server_, "Infer", "OK", ok), ok);
  const double seconds = report["duration_s"];
  EXPECT_GE(seconds, 5.0);
  EXPECT_LT(seconds, 8.0);
  EXPECT_NEAR(report["total"]["rpc_per_s"].get<double>(), static_cast<double>(requests) / seconds,
              1e-9 * static_cast<double>(requests));
  ExpectOrderedLatencies(report["total"]);
  EXPECT_EQ(report["by_rpc"].size(), 1u);
}

TEST_F(LoadTest, UnknownModelCountsEveryRequestAsNotFound) {
  StartServer();
  const json report =
      RunLoadJson({"--server", address(), "--model", kModel, "--model-id", "no-such-model",
                   "--concurrency", "2", "--duration", "1", "--warmup", "0"});
  ASSERT_TRUE(report.contains("total")) << report;
  const json& total = report["total"];
  const int64_t requests = total["requests"];
  EXPECT_GT(requests, 0);
  EXPECT_EQ(total["ok"].get<int64_t>(), 0);
  EXPECT_EQ(total["errors"].size(), 1u) << total["errors"];
  EXPECT_EQ(total["errors"]["NOT_FOUND"].get<int64_t>(), requests);
  EXPECT_TRUE(total["latency_ms"]["p50"].is_null());
  EXPECT_EQ(total["samples_per_s"].get<double>(), 0.0);
  EXPECT_EQ(WaitForRequestCount(server_, "Infer", "NOT_FOUND", requests), requests);
}

TEST_F(LoadTest, AdmissionLimitErrorsAreCountedByCode) {
  // One admission slot and eight closed-loop workers training one model: steps queue behind
  // each other, so most arrivals find the slot taken.
  StartServer({"--max-pending-requests=1"});
  const json report =
      RunLoadJson({"--server", address(), "--model", kModel, "--rpc", "train", "--concurrency", "8",
                   "--duration", "2", "--batch", "16", "--warmup", "0"});
  ASSERT_TRUE(report.contains("by_rpc")) << report;
  EXPECT_FALSE(report["settings"]["model_id"].get<std::string>().empty());
  const json& train = report["by_rpc"]["train"];
  const int64_t ok = train["ok"];
  const int64_t exhausted = train["errors"].value("RESOURCE_EXHAUSTED", int64_t{0});
  EXPECT_GT(ok, 0);
  EXPECT_GT(exhausted, 0);
  EXPECT_EQ(train["requests"].get<int64_t>(), ok + exhausted) << train["errors"];
  EXPECT_EQ(WaitForRequestCount(server_, "TrainStep", "OK", ok), ok);
  EXPECT_EQ(WaitForRequestCount(server_, "TrainStep", "RESOURCE_EXHAUSTED", exhausted), exhausted);
  EXPECT_EQ(report["total"]["errors"]["RESOURCE_EXHAUSTED"].get<int64_t>(), exhausted);
}

TEST(LoadExitCodeTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--model", kModel, "--bogus"},
        std::vector<std::string>{"--rate", "10"},
        std::vector<std::string>{"--model", kModel, "--rate", "10", "--concurrency", "2"},
        std::vector<std::string>{"--model", kModel, "--duration", "1", "--requests", "5"},
        std::vector<std::string>{"--model", kModel, "--rpc", "stream"},
        std::vector<std::string>{"--model", kModel, "--batch", "0"}}) {
    const ProcessResult result = RunLoad(args);
    EXPECT_EQ(result.exit_code, 2) << args.back() << ": " << result.err;
    EXPECT_TRUE(result.err.starts_with("backflow-load: ")) << result.err;
    EXPECT_TRUE(result.out.empty()) << result.out;
  }
}

// A port on 127.0.0.1 that nothing listens on (bound, then released).
int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ADD_FAILURE() << "cannot bind a socket: " << std::strerror(errno);
  }
  close(fd);
  return ntohs(address.sin_port);
}

TEST(LoadExitCodeTest, SetupFailuresExitOneWithOneLine) {
  const ProcessResult unreachable =
      RunLoad({"--server", "127.0.0.1:" + std::to_string(UnusedPort()), "--model", kModel,
               "--timeout", "1"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_TRUE(unreachable.err.starts_with("backflow-load: cannot reach the server"))
      << unreachable.err;
  EXPECT_TRUE(unreachable.out.empty());

  ProcessTempDir dir;
  const std::string bad_graph = dir.path() + "/bad.pbtxt";
  std::ofstream(bad_graph) << "placeholders { name: 'x' }\n"
                              "nodes { name: 'h' op: 'add' inputs: ['x', 'x2'] }\n";
  const ProcessResult bad = RunLoad({"--server", "127.0.0.1:1", "--model", bad_graph});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(bad.err.starts_with("backflow-load: ")) << bad.err;
  EXPECT_NE(bad.err.find("node 'h'"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
}

}  // namespace
}  // namespace backflow
