// ServiceEnv: what the RPC handlers, the Train streams and the model operations share: the
// configuration, admission control, the models, the data directory and the compute pool.
// One per server, created before the gRPC service and destroyed after it has stopped.
#ifndef BACKFLOW_SERVER_SERVICE_ENV_H_
#define BACKFLOW_SERVER_SERVICE_ENV_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "engine/api/import.h"
#include "server/admission.h"
#include "server/autosave.h"
#include "server/batcher.h"
#include "server/config.h"
#include "server/evaluate_cache.h"
#include "server/log_throttle.h"
#include "server/model.h"
#include "server/storage/checkpoint_store.h"
#include "server/telemetry/request_metrics.h"
#include "server/work_queue.h"

namespace backflow::server {

namespace auth {
class TokenStore;
}  // namespace auth
class DataParallel;

// config.limits as the graph importer takes them.
GraphLimits LimitsFor(const ServerConfig& config);

struct ServiceEnv {
  ServiceEnv(const ServerConfig& config, CheckpointStore* store, ComputePool* pool);

  const ServerConfig config;
  const GraphLimits graph_limits;  // config.limits as the graph importer takes them
  Admission admission;             // config.limits.max_pending_requests and max_streams
  MemoryBudget memory;             // config.limits.max_memory (Note [Memory budget])
  // config.limits.cache_memory's part of `memory`, held for good: the process-wide caches are
  // sized to it when the env is made (they are the process's, so the last env made sets them).
  MemoryBudget::Hold cache_share;
  ModelRegistry registry;
  CheckpointStore* const store;
  ComputePool* const pool;
  // config.autosave's writer. A pointer, so the const env of the step path can hand it work.
  const std::unique_ptr<AutoCheckpointer> autosave;
  // The Evaluate RPC's prepared graphs (Note [Evaluate cache]).
  const std::unique_ptr<EvaluateCache> evaluate_cache;
  // Dynamic batching of inference (server/batcher.h); destroyed first, while `pool` runs.
  const std::unique_ptr<InferBatcher> batcher;
  std::atomic<int64_t> next_request_id{1};  // for the logs (CallLog)
  LogThrottles log_throttles;               // CallLog's, per method and code
  auth::TokenStore* tokens = nullptr;       // --auth-tokens (server/caller_check.h); null: off
  // Rank 0 of a data-parallel job (Note [Data-parallel jobs] in server/data_parallel/replica.h);
  // null for a server of one process.
  DataParallel* data_parallel = nullptr;
  // The request series of /metrics (Note [Metrics] in server/metrics_text.h); null when
  // config.metrics_listen is empty, and then nothing is counted.
  const std::unique_ptr<RequestMetrics> metrics;

  // The model's batching: its CreateModelRequest.batching, else the server's flags.
  BatchSettings BatchSettingsFor(const Model& model) const;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_SERVICE_ENV_H_
