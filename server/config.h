// ServerConfig: everything backflow-server can be told on its command line, with defaults that
// need no setup (loopback, a data directory under the working directory).
#ifndef BACKFLOW_SERVER_CONFIG_H_
#define BACKFLOW_SERVER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "server/auth/tls_files.h"
#include "server/checkpoint_schedule.h"

namespace backflow::server {

// Bounds on what clients may ask; past one, a request fails with RESOURCE_EXHAUSTED naming it.
// 80% of the memory this process may use: the machine's (MemTotal in /proc/meminfo) or its
// cgroup's limit (memory.max, v2; memory.limit_in_bytes, v1), whichever is lower. 0 if neither
// can be read. Note [Memory budget] in engine/core/memory_budget.h.
int64_t DefaultMaxMemory();

struct ServerLimits {
  // Bytes that models (their parameters, running state and optimizer slots, counted twice:
  // the snapshot served and the one a step writes) and runs in progress (their intermediates
  // and gradients) may take together; past it, RESOURCE_EXHAUSTED before anything is
  // allocated. 0: no ceiling.
  int64_t max_memory = DefaultMaxMemory();
  // Bytes kept for reuse, within max_memory: the buffers of idle cached plans and freed tensor
  // blocks (Note [Idle buffers] in engine/exec/flow_pool.h, Note [Buffer cache] in
  // engine/core/tensor.cc). -1: an eighth of max_memory, or 1.25 GiB without a ceiling.
  int64_t cache_memory = -1;
  int64_t max_message_bytes = int64_t{256} << 20;  // one request or response
  int64_t max_nodes = 10000;  // gate nodes per graph
  int64_t max_tensor_elements = int64_t{1} << 26;  // any one tensor (batch included)
  int64_t max_models = 64;
  // Compute requests (steps, inference, gradients, evaluations, checkpoint operations) queued
  // or running at once, over all clients. Train streams are bounded apart from this, by
  // max_streams x stream_window.
  int64_t max_pending_requests = 256;
  int64_t max_streams = 64;  // Train streams open at once
  int64_t stream_window = 8;  // batches a Train stream reads ahead of its answers
  int64_t max_gradcheck_runs = 20000;  // forward runs of one CheckGradients request
};

// What limits.cache_memory comes to (at most half of a max_memory ceiling): a quarter for freed
// tensor blocks, at most 256 MiB, and the rest for the buffers of idle plans.
struct CacheShares {
  int64_t buffer_cache = 0;
  int64_t idle_buffers = 0;
  int64_t total() const { return buffer_cache + idle_buffers; }
};
CacheShares CacheSharesFor(const ServerLimits& limits);

inline constexpr char kDefaultMetricsListen[] = "127.0.0.1:9464";

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  std::string data_dir = "backflow-data";  // relative to the working directory
  int compute_threads = 0;  // oneTBB threads for compute; 0: one per core
  int rpc_threads = 0;  // gRPC's thread cap; 0: gRPC's default
  ServerLimits limits;
  std::chrono::milliseconds shutdown_grace{10000};  // for in-flight calls on SIGTERM
  // A Train stream waiting on its client this long (no request read, no answer taken, no step
  // queued or running) is ended with DEADLINE_EXCEEDED, giving its slot back; 0: never.
  std::chrono::seconds stream_idle_timeout{60};
  std::string log_level = "info";  // trace, debug, info, warn, error, off
  std::string log_format = "text";  // text, or json: Note [JSON logs] in server/log_format.h
  // Automatic checkpoints (Note [Automatic checkpoints] in server/autosave.h): by default every
  // 60 s of training, so a crash costs at most about a minute; by step count only when asked.
  AutoCheckpointPolicy autosave{.every_steps = 0, .every_seconds = std::chrono::seconds(60)};
  // The token file (server/auth/tokens.h); empty: no tokens, every call allowed.
  std::string auth_tokens;
  // Serve a non-loopback address without tokens anyway (ParseFlags refuses that otherwise).
  bool insecure = false;
  // Prometheus metrics and the status page over plain HTTP (HOST:PORT; Note [Metrics] in
  // server/metrics_text.h); empty: neither, and nothing is counted. backflow-server's
  // --metrics-listen defaults to kDefaultMetricsListen; a Server started from code serves none
  // unless asked.
  std::string metrics_listen;
  // Set when metrics_listen is the flag's default: an address in use then only warns (a second
  // server on one machine still starts), where an address asked for fails the start.
  bool metrics_listen_defaulted = false;
  // Serve grpc.reflection.v1 and v1alpha (server/reflection.h); --reflection=off: neither.
  bool reflection = true;
  // One rank of a data-parallel job under mpirun (Note [Data-parallel jobs] in
  // server/data_parallel/replica.h).
  bool data_parallel = false;
  int64_t data_parallel_bucket_bytes = int64_t{4} << 20;  // MpiReducer's buckets
  int64_t data_parallel_checksum_steps = 100;  // DataParallel::Step's checksums; 0: never
  // How long a rank waits for the others in one exchange (Note [Dead ranks] in
  // server/data_parallel/collective.h).
  std::chrono::seconds data_parallel_timeout{60};
  // --tls-cert, --tls-key, --tls-client-ca, --tls-reload-seconds; no certificate: plaintext.
  auth::TlsFiles tls;
  // Dynamic batching of Infer and ModelInfer (Note [Dynamic batching] in server/batcher.h): at
  // most max_batch_rows rows per stacked run (1: off), the first request of a batch waiting at
  // most batch_delay for others. A model's CreateModelRequest.batching overrides both.
  int64_t max_batch_rows = 256;
  std::chrono::microseconds batch_delay{0};
  // Automatic checkpoints kept per model (CheckpointStoreOptions::keep_automatic).
  int64_t checkpoint_keep = 3;
  // Prepared Evaluate graphs kept (Note [Evaluate cache] in server/evaluate_cache.h); 0: none.
  int64_t evaluate_cache_entries = 64;
  // Testing aid: pause mid-way through writing a checkpoint (crash-safety tests).
  std::chrono::milliseconds checkpoint_write_delay{0};
};

// Parses `--flag=value` or `--flag value` arguments (no argv[0]) with the flag parser of every
// backflow binary (clients/common/flags.h: a flag given twice keeps its last value).
// InvalidArgument naming the flag for an unknown flag (suggesting the closest one), a missing or
// malformed value, or a value out of range. `--help` sets *help.
StatusOr<ServerConfig> ParseFlags(const std::vector<std::string>& args, bool* help);
// The --help text, generated from the flags with their defaults.
std::string Usage();
// Whether `listen` (HOST:PORT) serves only this machine: 127.x.y.z, localhost or [::1].
bool IsLoopback(std::string_view listen);
// One line per setting, for the start-up log.
std::vector<std::string> Describe(const ServerConfig& config);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_CONFIG_H_
