// backflow-load: a training-aware load generator for backflow-server (docs/load.md).
#include <cstdio>
#include <string>
#include <vector>

#include "clients/common/flags.h"
#include "clients/common/rpc.h"
#include "clients/load/options.h"
#include "clients/load/report.h"
#include "clients/load/run.h"
#include "clients/load/workload.h"

namespace {

constexpr int kExitSetupFailed = 1;

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "backflow-load: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace backflow::load;
  const std::vector<std::string> args(argv + 1, argv + argc);
  backflow::StatusOr<LoadOptions> parsed = ParseOptions(args);
  if (!parsed.ok()) {
    return backflow::clients::PrintUsageError("backflow-load", parsed.status().message());
  }
  const LoadOptions& options = *parsed;
  if (options.help) {
    std::fputs(Usage().c_str(), stdout);
    return 0;
  }
  std::shared_ptr<grpc::Channel> channel =
      backflow::clients::OpenChannel(options.server, options.channel);
  auto stub = backflow::v1::Backflow::NewStub(channel);
  backflow::StatusOr<Workload> workload = SetUp(options, *stub, *channel);
  if (!workload.ok()) return Fail(kExitSetupFailed, workload.status().message());

  const RunResult result = options.open_loop() ? RunOpenLoop(options, *workload, channel)
                                               : RunClosedLoop(options, *workload, channel);
  const std::string report = options.json ? FormatJson(options, *workload, result)
                                          : FormatTable(options, *workload, result);
  std::fputs(report.c_str(), stdout);
  std::fflush(stdout);
  if (std::string warning = TearDown(options, *workload, *stub); !warning.empty()) {
    std::fprintf(stderr, "backflow-load: warning: %s\n", warning.c_str());
  }
  return 0;
}
