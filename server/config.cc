#include "server/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "clients/common/flags.h"
#include "engine/core/memory_budget.h"
#include "server/telemetry/http_endpoint.h"

namespace backflow::server {
namespace {

// The first number in the file at `path` (times `unit`), or 0 when there is none ("max").
int64_t ReadLimit(const char* path, const char* key, int64_t unit) {
  std::ifstream in(path);
  std::string word;
  if (key != nullptr) {
    while (in >> word && word != key) {
    }
  }
  int64_t value = 0;
  if (!(in >> value) || value <= 0) return 0;
  return value > (int64_t{1} << 53) / unit ? 0 : value * unit;
}

using clients::FlagKind;
using clients::FlagSpec;

constexpr int64_t kBig = int64_t{1} << 40;
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view kOnOff[] = {"on", "off"};
constexpr std::string_view kLogFormats[] = {"text", "json"};

// An integer setting: its flag, its range, the help (" (default N)" is added) and its field.
struct IntSetting {
  std::string_view name;
  int64_t min;
  int64_t max;
  std::string_view help;
  int64_t (*get)(const ServerConfig&);
  void (*set)(ServerConfig&, int64_t);
};

#define BF_SETTING(field) \
  [](const ServerConfig& c) -> int64_t { return c.field; }, \
      [](ServerConfig& c, int64_t v) { c.field = v; }
#define BF_MS_SETTING(field) \
  [](const ServerConfig& c) -> int64_t { return c.field.count(); }, \
      [](ServerConfig& c, int64_t v) { c.field = std::chrono::milliseconds(v); }
#define BF_US_SETTING(field)                                        \
  [](const ServerConfig& c) -> int64_t { return c.field.count(); }, \
      [](ServerConfig& c, int64_t v) { c.field = std::chrono::microseconds(v); }
#define BF_S_SETTING(field) \
  [](const ServerConfig& c) -> int64_t { return c.field.count(); }, \
      [](ServerConfig& c, int64_t v) { c.field = std::chrono::seconds(v); }

const IntSetting kIntSettings[] = {
    {"max-memory", 0, int64_t{1} << 50,
     "bytes models, runs in progress and caches may take together; 0: no ceiling (default: 80% of "
     "the machine's or the cgroup's memory)",
     BF_SETTING(limits.max_memory)},
    {"cache-memory", -1, int64_t{1} << 50,
     "bytes of --max-memory kept for reuse by idle cached plans and freed buffers; 0: none "
     "(default -1: an eighth of --max-memory, or 1.25 GiB without a ceiling)",
     BF_SETTING(limits.cache_memory)},
    {"compute-threads", 0, 1024, "oneTBB threads for compute (default 0: one per core)",
     BF_SETTING(compute_threads)},
    {"rpc-threads", 0, 1024, "cap on gRPC's threads (default 0: gRPC's choice)",
     BF_SETTING(rpc_threads)},
    {"max-message-bytes", 1024, (int64_t{1} << 31) - 1, "largest request or response",
     BF_SETTING(limits.max_message_bytes)},
    {"max-nodes", 1, kBig, "gate nodes per graph", BF_SETTING(limits.max_nodes)},
    {"max-tensor-elements", 1, kBig, "elements in any one tensor",
     BF_SETTING(limits.max_tensor_elements)},
    {"max-models", 1, kBig, "models held at once", BF_SETTING(limits.max_models)},
    {"max-pending-requests", 1, kBig, "compute requests queued or running",
     BF_SETTING(limits.max_pending_requests)},
    {"max-streams", 1, kBig, "Train streams open at once", BF_SETTING(limits.max_streams)},
    {"max-batch-rows", 1, kBig, "rows of one dynamically batched inference run; 1: no batching",
     BF_SETTING(max_batch_rows)},
    {"batch-delay-us", 0, 1000000,
     "microseconds an inference request may wait for others to batch with",
     BF_US_SETTING(batch_delay)},
    {"stream-window", 1, 4096, "batches a Train stream reads ahead",
     BF_SETTING(limits.stream_window)},
    {"stream-idle-timeout", 0, 86400,
     "seconds a Train stream may wait on its client before it is ended; 0: never",
     BF_S_SETTING(stream_idle_timeout)},
    {"max-gradcheck-runs", 1, kBig, "forward runs of one CheckGradients request",
     BF_SETTING(limits.max_gradcheck_runs)},
    {"shutdown-grace-ms", 0, kBig, "time in-flight calls get on SIGTERM",
     BF_MS_SETTING(shutdown_grace)},
    {"checkpoint-every-steps", 0, kBig,
     "automatic checkpoint after this many steps of a model (default 0: not by steps)",
     BF_SETTING(autosave.every_steps)},
    {"checkpoint-every-seconds", 0, 86400 * 365,
     "automatic checkpoint after this many seconds of training; 0: not by time",
     BF_S_SETTING(autosave.every_seconds)},
    {"evaluate-cache-entries", 0, 100000,
     "Evaluate graphs kept prepared and compiled for calls that send\nthe same graph again, "
     "least recently used out (0: none)",
     BF_SETTING(evaluate_cache_entries)},
    {"checkpoint-keep", 1, 1000000,
     "automatic checkpoints kept per model, newest first; named ones are kept until deleted",
     BF_SETTING(checkpoint_keep)},
    {"tls-reload-seconds", 1, 86400,
     "how often the TLS files are re-read, for rotation without a restart",
     BF_SETTING(tls.reload_seconds)},
    {"data-parallel-bucket-bytes", 1024, int64_t{1} << 30,
     "with --data-parallel: gradient bytes summed across the ranks\nin one allreduce, started "
     "as soon as backward filled them",
     BF_SETTING(data_parallel_bucket_bytes)},
    {"data-parallel-checksum-steps", 0, 1000000000,
     "with --data-parallel: every this many steps of a model, its\ncopies on all ranks are "
     "compared by checksum before the step (0: never)",
     BF_SETTING(data_parallel_checksum_steps)},
    {"data-parallel-timeout", 1, 86400,
     "with --data-parallel: seconds a rank waits for the others in\none exchange before it "
     "takes the job for broken (a rank died)",
     BF_S_SETTING(data_parallel_timeout)},
    {"checkpoint-write-delay-ms", 0, 600000, "testing aid: pause mid-way through checkpoint writes",
     BF_MS_SETTING(checkpoint_write_delay)},
};

#undef BF_SETTING
#undef BF_MS_SETTING
#undef BF_US_SETTING
#undef BF_S_SETTING

// The flags in --help order, their help showing the defaults of `d`.
std::vector<FlagSpec> Specs(const ServerConfig& d) {
  std::vector<FlagSpec> specs = {
      {"listen", FlagKind::kValue, "HOST:PORT",
       "address to serve on (default " + d.listen + ";\nport 0 picks a free port)"},
      {"data-dir", FlagKind::kValue, "DIR", "models and checkpoints (default ./" + d.data_dir + ")"},
  };
  for (const IntSetting& setting : kIntSettings) {
    std::string help(setting.help);
    if (help.find("(default") == std::string::npos) {
      help += " (default " + std::to_string(setting.get(d)) + ")";
    }
    specs.push_back({setting.name, FlagKind::kValue, "N", std::move(help)});
  }
  specs.push_back({"auth-tokens", FlagKind::kValue, "FILE",
                   "require a token with a role on every backflow.v1 call;\nFILE lists their "
                   "SHA-256 digests (docs/security.md; default: off)"});
  specs.push_back({"insecure", FlagKind::kSwitch, "",
                   "serve a non-loopback --listen without --auth-tokens anyway"});
  specs.push_back({"tls-cert", FlagKind::kValue, "FILE",
                   "serve TLS with this PEM certificate chain (default: plaintext)"});
  specs.push_back({"tls-key", FlagKind::kValue, "FILE", "the PEM private key of --tls-cert"});
  specs.push_back({"tls-client-ca", FlagKind::kValue, "FILE",
                   "mutual TLS: require client certificates signed by\nthese PEM CA certificates"});
  specs.push_back({"metrics-listen", FlagKind::kValue, "HOST:PORT",
                   std::string("Prometheus /metrics and the status page over HTTP\n(default ") +
                       kDefaultMetricsListen + "; empty: off)"});
  specs.push_back({"reflection", FlagKind::kValue, "on|off",
                   "serve grpc.reflection.v1 and v1alpha (with --auth-tokens:\nfor read tokens) "
                   "(default on)"});
  specs.push_back({"data-parallel", FlagKind::kSwitch, "",
                   "one rank of `mpirun -np N backflow-server --data-parallel`:\nrank 0 serves, "
                   "every rank trains a shard of each batch\n(docs/scaling.md; needs Open MPI)"});
  specs.push_back({"log-level", FlagKind::kValue, "LEVEL",
                   "trace, debug, info, warn, error, off (default " + d.log_level + ")"});
  specs.push_back({"log-format", FlagKind::kValue, "FORMAT",
                   "text, or json: one JSON object per line (default " + d.log_format + ")"});
  specs.push_back({"help", FlagKind::kSwitch, "", "show this help and exit"});
  return specs;
}

}  // namespace

StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& argv, bool* help) {
  ServerConfig config;
  BF_ASSIGN_OR_RETURN(const clients::Args args, clients::ParseArgs(argv, Specs(config)));
  BF_RETURN_IF_ERROR(args.NoOperands());
  *help = args.Has("help");
  BF_ASSIGN_OR_RETURN(config.listen, args.Address("listen", config.listen));
  BF_ASSIGN_OR_RETURN(config.data_dir, args.NonEmpty("data-dir", config.data_dir));
  BF_ASSIGN_OR_RETURN(config.log_level, args.Choice("log-level", config.log_level, kLogLevels));
  BF_ASSIGN_OR_RETURN(config.log_format, args.Choice("log-format", config.log_format, kLogFormats));
  if (args.Has("auth-tokens")) {
    BF_ASSIGN_OR_RETURN(config.auth_tokens, args.NonEmpty("auth-tokens", ""));
  }
  config.insecure = args.Has("insecure");
  config.data_parallel = args.Has("data-parallel");
  config.metrics_listen_defaulted = !args.Has("metrics-listen");
  config.metrics_listen = args.Value("metrics-listen", kDefaultMetricsListen);
  if (std::string host;
      !config.metrics_listen.empty() && !SplitHostPort(config.metrics_listen, &host, nullptr)) {
    return InvalidArgumentError("--metrics-listen: '" + config.metrics_listen +
                                "' is not HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464, "
                                "[::1]:9464; port 0 picks a free one; empty: off)");
  }
  BF_ASSIGN_OR_RETURN(const std::string reflection, args.Choice("reflection", "on", kOnOff));
  config.reflection = reflection == "on";
  for (auto [flag, field] :
       {std::pair{"tls-cert", &config.tls.cert}, std::pair{"tls-key", &config.tls.key},
        std::pair{"tls-client-ca", &config.tls.client_ca}}) {
    if (args.Has(flag)) {
      BF_ASSIGN_OR_RETURN(*field, args.NonEmpty(flag, ""));
    }
  }
  if (!IsLoopback(config.listen) && config.auth_tokens.empty() && !config.insecure) {
    return InvalidArgumentError(
        "--listen " + config.listen +
        " is reachable from other machines, and without tokens anyone who reaches it may read, "
        "train and delete every model: add --auth-tokens FILE (docs/security.md), or --insecure "
        "to serve without tokens anyway");
  }
  for (const IntSetting& setting : kIntSettings) {
    BF_ASSIGN_OR_RETURN(const int64_t value, args.Integer(setting.name, setting.get(config),
                                                          setting.min, setting.max));
    setting.set(config, value);
  }
  return config;
}

bool IsLoopback(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  const std::string_view host = colon == std::string_view::npos ? listen : listen.substr(0, colon);
  return host.starts_with("127.") || host == "localhost" || host == "[::1]";
}

std::string Usage() {
  return "usage: backflow-server [--flag=value ...]\n"
         "\n"
         "Serves backflow.v1.Backflow, grpc.health.v1.Health and server reflection\n"
         "(grpc.reflection.v1 and v1alpha).\n"
         "\n" +
         clients::FormatFlags(Specs(ServerConfig{}), {.equals = true, .column = 32});
}

int64_t DefaultMaxMemory() {
  int64_t limit = ReadLimit("/proc/meminfo", "MemTotal:", 1024);
  for (const char* cgroup :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const int64_t bytes = ReadLimit(cgroup, nullptr, 1);
    if (bytes > 0 && (limit == 0 || bytes < limit)) limit = bytes;
  }
  return limit / 5 * 4;
}

CacheShares CacheSharesFor(const ServerLimits& limits) {
  constexpr int64_t kBufferCacheMax = int64_t{256} << 20;
  int64_t total = limits.cache_memory;
  if (total < 0) total = limits.max_memory > 0 ? limits.max_memory / 8 : int64_t{5} << 28;
  if (limits.max_memory > 0) total = std::min(total, limits.max_memory / 2);
  CacheShares shares;
  shares.buffer_cache = std::min(kBufferCacheMax, total / 4);
  shares.idle_buffers = total - shares.buffer_cache;
  return shares;
}

std::vector<std::string> Describe(const ServerConfig& c) {
  return {
      "listen=" + c.listen,
      "data_dir=" + c.data_dir,
      "compute_threads=" + std::to_string(c.compute_threads) +
          " rpc_threads=" + std::to_string(c.rpc_threads),
      "max_memory=" + std::to_string(c.limits.max_memory) +
          (c.limits.max_memory > 0 ? " (" + ByteSize(c.limits.max_memory) + ")"
                                   : std::string(" (no ceiling)")) +
          " cache_memory=" + ByteSize(CacheSharesFor(c.limits).total()),
      "max_message_bytes=" + std::to_string(c.limits.max_message_bytes) +
          " max_nodes=" + std::to_string(c.limits.max_nodes) +
          " max_tensor_elements=" + std::to_string(c.limits.max_tensor_elements),
      "max_models=" + std::to_string(c.limits.max_models) +
          " max_pending_requests=" + std::to_string(c.limits.max_pending_requests) +
          " max_streams=" + std::to_string(c.limits.max_streams) +
          " stream_window=" + std::to_string(c.limits.stream_window) +
          " stream_idle_timeout_s=" + std::to_string(c.stream_idle_timeout.count()) +
          " max_gradcheck_runs=" + std::to_string(c.limits.max_gradcheck_runs),
      "max_batch_rows=" + std::to_string(c.max_batch_rows) +
          " batch_delay_us=" + std::to_string(c.batch_delay.count()) +
          (c.max_batch_rows > 1 ? "" : " (dynamic batching off)"),
      "checkpoint_every_steps=" + std::to_string(c.autosave.every_steps) +
          " checkpoint_every_seconds=" + std::to_string(c.autosave.every_seconds.count()) +
          " checkpoint_keep=" + std::to_string(c.checkpoint_keep) +
          (c.autosave.enabled() ? "" : " (automatic checkpoints off)"),
      "shutdown_grace_ms=" + std::to_string(c.shutdown_grace.count()) +
          " log_level=" + c.log_level + " log_format=" + c.log_format +
          " reflection=" + (c.reflection ? "on" : "off") +
          (c.data_parallel
               ? " data_parallel bucket_bytes=" + std::to_string(c.data_parallel_bucket_bytes) +
                     " checksum_steps=" + std::to_string(c.data_parallel_checksum_steps) +
                     " timeout=" + std::to_string(c.data_parallel_timeout.count()) + "s"
               : ""),
      "metrics_listen=" + (c.metrics_listen.empty() ? std::string("off") : c.metrics_listen),
      "auth_tokens=" + (c.auth_tokens.empty() ? std::string("off") : c.auth_tokens) +
          (c.insecure ? " insecure" : ""),
      "tls=" + (c.tls.enabled() ? c.tls.cert + " key=" + c.tls.key : std::string("off")) +
          (c.tls.mutual() ? " client_ca=" + c.tls.client_ca : std::string()) +
          (c.tls.enabled() ? " reload_s=" + std::to_string(c.tls.reload_seconds) : std::string()),
  };
}

}  // namespace backflow::server
