#include "server/service_env.h"

#include "engine/core/tensor.h"
#include "engine/exec/program.h"

namespace backflow::server {

GraphLimits LimitsFor(const ServerConfig& config) {
  GraphLimits limits;
  limits.max_nodes = config.limits.max_nodes;
  limits.max_tensor_elements = config.limits.max_tensor_elements;
  return limits;
}

ServiceEnv::ServiceEnv(const ServerConfig& config, CheckpointStore* store, ComputePool* pool)
    : config(config),
      graph_limits(LimitsFor(config)),
      admission(config.limits.max_pending_requests, config.limits.max_streams),
      memory(config.limits.max_memory),
      registry(config.limits.max_models),
      store(store),
      pool(pool),
      autosave(std::make_unique<AutoCheckpointer>(config.autosave, store)),
      evaluate_cache(
          std::make_unique<EvaluateCache>(static_cast<size_t>(config.evaluate_cache_entries))),
      batcher(std::make_unique<InferBatcher>(pool)),
      metrics(config.metrics_listen.empty() ? nullptr : std::make_unique<RequestMetrics>()) {
  const CacheShares caches = CacheSharesFor(config.limits);
  SetIdleBufferCapacity(caches.idle_buffers);
  SetBufferCacheCapacity(static_cast<size_t>(caches.buffer_cache));
  cache_share = memory.Force(caches.total());
}

BatchSettings ServiceEnv::BatchSettingsFor(const Model& model) const {
  const v1::InferBatching& own = model.record().request().batching();
  return {
      .max_rows = own.has_max_rows() ? own.max_rows() : config.max_batch_rows,
      .delay = own.has_delay_us() ? std::chrono::microseconds(own.delay_us()) : config.batch_delay};
}

}  // namespace backflow::server
