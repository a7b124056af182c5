#include "server/config.h"

#include <charconv>
#include <functional>
#include <map>

namespace backflow::server {
namespace {

StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& text, int64_t min,
                           int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    return InvalidArgumentError("--" + flag + ": '" + text + "' is not an integer");
  }
  if (value < min || value > max) {
    return InvalidArgumentError("--" + flag + ": " + text + " is outside [" +
                                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

using Setter = std::function<Status(ServerConfig&, const std::string&)>;

Setter IntFlag(const std::string& name, int64_t min, int64_t max,
               std::function<void(ServerConfig&, int64_t)> set) {
  return [=](ServerConfig& config, const std::string& text) -> Status {
    BF_ASSIGN_OR_RETURN(int64_t value, ParseInt(name, text, min, max));
    set(config, value);
    return Status::Ok();
  };
}

const std::map<std::string, Setter>& Flags() {
  constexpr int64_t kBig = int64_t{1} << 40;
  static const auto* flags = new std::map<std::string, Setter>{
      {"listen",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v.find(':') == std::string::npos) {
           return InvalidArgumentError("--listen: '" + v + "' is not HOST:PORT");
         }
         c.listen = v;
         return Status::Ok();
       }},
      {"data-dir",
       [](ServerConfig& c, const std::string& v) -> Status {
         if (v.empty()) return InvalidArgumentError("--data-dir: empty");
         c.data_dir = v;
         return Status::Ok();
       }},
      {"log-level",
       [](ServerConfig& c, const std::string& v) -> Status {
         static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
         for (const char* level : kLevels) {
           if (v == level) {
             c.log_level = v;
             return Status::Ok();
           }
         }
         return InvalidArgumentError("--log-level: '" + v +
                                     "' is not one of trace, debug, info, warn, error, off");
       }},
      {"compute-threads",
       IntFlag("compute-threads", 0, 1024, [](auto& c, int64_t v) { c.compute_threads = v; })},
      {"rpc-threads",
       IntFlag("rpc-threads", 0, 1024, [](auto& c, int64_t v) { c.rpc_threads = v; })},
      {"max-message-bytes", IntFlag("max-message-bytes", 1024, (int64_t{1} << 31) - 1,
                                    [](auto& c, int64_t v) { c.limits.max_message_bytes = v; })},
      {"max-nodes",
       IntFlag("max-nodes", 1, kBig, [](auto& c, int64_t v) { c.limits.max_nodes = v; })},
      {"max-tensor-elements", IntFlag("max-tensor-elements", 1, kBig, [](auto& c, int64_t v) {
         c.limits.max_tensor_elements = v;
       })},
      {"max-models",
       IntFlag("max-models", 1, kBig, [](auto& c, int64_t v) { c.limits.max_models = v; })},
      {"max-pending-requests", IntFlag("max-pending-requests", 1, kBig, [](auto& c, int64_t v) {
         c.limits.max_pending_requests = v;
       })},
      {"max-streams",
       IntFlag("max-streams", 1, kBig, [](auto& c, int64_t v) { c.limits.max_streams = v; })},
      {"stream-window",
       IntFlag("stream-window", 1, 4096, [](auto& c, int64_t v) { c.limits.stream_window = v; })},
      {"shutdown-grace-ms", IntFlag("shutdown-grace-ms", 0, kBig, [](auto& c, int64_t v) {
         c.shutdown_grace = std::chrono::milliseconds(v);
       })},
      {"checkpoint-write-delay-ms",
       IntFlag("checkpoint-write-delay-ms", 0, 600000,
               [](auto& c, int64_t v) { c.checkpoint_write_delay = std::chrono::milliseconds(v); })},
  };
  return *flags;
}

}  // namespace

StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args, bool* help) {
  ServerConfig config;
  *help = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) return InvalidArgumentError("unexpected argument '" + arg + "'");
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    auto flag = Flags().find(name);
    if (flag == Flags().end()) {
      return InvalidArgumentError("unknown flag --" + name + " (see --help)");
    }
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return InvalidArgumentError("--" + name + ": missing value");
    }
    BF_RETURN_IF_ERROR(flag->second(config, value));
  }
  return config;
}

std::string Usage() {
  const ServerConfig d;
  return "usage: backflow-server [--flag=value ...]\n"
         "\n"
         "Serves backflow.v1.Backflow, grpc.health.v1.Health and server reflection.\n"
         "\n"
         "  --listen=HOST:PORT            address to serve on (default " + d.listen + ";\n"
         "                                port 0 picks a free port)\n"
         "  --data-dir=DIR                models and checkpoints (default ./" + d.data_dir + ")\n"
         "  --compute-threads=N           oneTBB threads for compute (default 0: one per core)\n"
         "  --rpc-threads=N               cap on gRPC's threads (default 0: gRPC's choice)\n"
         "  --max-message-bytes=N         largest request or response (default " +
         std::to_string(d.limits.max_message_bytes) + ")\n"
         "  --max-nodes=N                 gate nodes per graph (default " +
         std::to_string(d.limits.max_nodes) + ")\n"
         "  --max-tensor-elements=N       elements in any one tensor (default " +
         std::to_string(d.limits.max_tensor_elements) + ")\n"
         "  --max-models=N                models held at once (default " +
         std::to_string(d.limits.max_models) + ")\n"
         "  --max-pending-requests=N      compute requests queued or running (default " +
         std::to_string(d.limits.max_pending_requests) + ")\n"
         "  --max-streams=N               Train streams open at once (default " +
         std::to_string(d.limits.max_streams) + ")\n"
         "  --stream-window=N             batches a Train stream reads ahead (default " +
         std::to_string(d.limits.stream_window) + ")\n"
         "  --shutdown-grace-ms=N         time in-flight calls get on SIGTERM (default " +
         std::to_string(d.shutdown_grace.count()) + ")\n"
         "  --log-level=LEVEL             trace, debug, info, warn, error, off (default " +
         d.log_level + ")\n"
         "  --checkpoint-write-delay-ms=N testing aid: pause mid-way through checkpoint writes\n";
}

std::vector<std::string> Describe(const ServerConfig& c) {
  return {
      "listen=" + c.listen,
      "data_dir=" + c.data_dir,
      "compute_threads=" + std::to_string(c.compute_threads) + " rpc_threads=" +
          std::to_string(c.rpc_threads),
      "max_message_bytes=" + std::to_string(c.limits.max_message_bytes) +
          " max_nodes=" + std::to_string(c.limits.max_nodes) +
          " max_tensor_elements=" + std::to_string(c.limits.max_tensor_elements),
      "max_models=" + std::to_string(c.limits.max_models) +
          " max_pending_requests=" + std::to_string(c.limits.max_pending_requests) +
          " max_streams=" + std::to_string(c.limits.max_streams) +
          " stream_window=" + std::to_string(c.limits.stream_window),
      "shutdown_grace_ms=" + std::to_string(c.shutdown_grace.count()) +
          " log_level=" + c.log_level,
  };
}

}  // namespace backflow::server
