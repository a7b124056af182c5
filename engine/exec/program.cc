#include "engine/exec/program.h"

#include "engine/exec/batch_buckets.h"
#include "engine/exec/plan_cache.h"

namespace backflow {
namespace {

// Resolves feeds to a by-value-id table; every feed must name a placeholder or parameter.
StatusOr<std::vector<const Tensor*>> ResolveFeeds(const Graph& graph, const FeedMap& feeds,
                                                  DType* dtype) {
  std::vector<const Tensor*> by_id(static_cast<size_t>(graph.num_values()), nullptr);
  bool first = true;
  for (const auto& [name, tensor] : feeds) {
    std::optional<ValueId> id = graph.Find(name);
    if (!id) return InvalidArgumentError("feed '" + name + "': no such tensor in the graph");
    const Value& value = graph.value(*id);
    if (value.kind != ValueKind::kPlaceholder && value.kind != ValueKind::kParameter &&
        value.kind != ValueKind::kState) {
      return InvalidArgumentError("feed '" + name +
                                  "': only placeholders, parameters and state can be fed");
    }
    if (tensor == nullptr || !tensor->valid()) {
      return InvalidArgumentError("feed '" + name + "': no tensor");
    }
    if (IsInteger(tensor->dtype()) || IsInteger(value.dtype)) {
      if (tensor->dtype() != value.dtype) {
        return InvalidArgumentError(
            "feed '" + name + "': dtype " + std::string(DTypeName(tensor->dtype())) +
            ", but the placeholder is " +
            (IsInteger(value.dtype) ? std::string(DTypeName(value.dtype)) : "float"));
      }
      by_id[static_cast<size_t>(*id)] = tensor;
      continue;  // integer placeholders keep their dtype; the plan's float dtype is the others'
    }
    if (!first && tensor->dtype() != *dtype) {
      return InvalidArgumentError("feed '" + name + "': dtype " +
                                  std::string(DTypeName(tensor->dtype())) +
                                  " differs from the other feeds' " +
                                  std::string(DTypeName(*dtype)));
    }
    *dtype = tensor->dtype();
    first = false;
    by_id[static_cast<size_t>(*id)] = tensor;
  }
  return by_id;
}

std::string PlanKey(DType dtype, std::span<const Tensor* const> feeds,
                    std::span<const ValueId> fetches) {
  std::string key = std::string(DTypeName(dtype)) + "|fetch";
  for (ValueId v : fetches) key += " " + std::to_string(v);
  key += "|feed";
  for (size_t v = 0; v < feeds.size(); ++v) {
    if (feeds[v] != nullptr) key += " " + std::to_string(v) + feeds[v]->shape().ToString();
  }
  return key;
}

}  // namespace

Program::Program(std::shared_ptr<const Graph> graph, ProgramOptions options)
    : graph_(std::move(graph)),
      rows_(InferenceRows(*graph_)),
      cache_(std::make_unique<PlanCache>(options.plan_cache_capacity)),
      buckets_(std::make_unique<BatchBuckets>()) {}

Program::~Program() = default;

StatusOr<std::shared_ptr<const Plan>> Program::PlanFor(const FeedMap& feeds,
                                                       std::span<const ValueId> fetches,
                                                       std::vector<const Tensor*>* by_id,
                                                       bool* compiled) const {
  for (ValueId v : fetches) {
    if (v < 0 || v >= graph_->num_values()) return InvalidArgumentError("fetch of a bad value id");
  }
  DType dtype = DType::kFloat32;
  BF_ASSIGN_OR_RETURN(*by_id, ResolveFeeds(*graph_, feeds, &dtype));
  return cache_->GetOrCompile(PlanKey(dtype, *by_id, fetches), [&] {
    if (compiled != nullptr) *compiled = true;
    return Plan::Compile(*graph_, dtype, *by_id, fetches);
  });
}

StatusOr<std::vector<Tensor>> Program::Run(const FeedMap& feeds, std::span<const ValueId> fetches,
                                           const RunOptions& options) const {
  const int64_t padded = PaddedRows(feeds, fetches, options);
  if (padded >= 0) return RunPadded(feeds, fetches, options, padded);
  return RunExact(feeds, fetches, options);
}

int64_t Program::PaddedRows(const FeedMap& feeds, std::span<const ValueId> fetches,
                            const RunOptions& options) const {
  if (options.info.training || fetches.empty()) return -1;
  for (ValueId v : fetches) {
    if (v < 0 || v >= graph_->num_values() || rows(v) == Rows::kMixed) return -1;
  }
  int64_t batch = -1;
  for (const auto& [name, tensor] : feeds) {
    std::optional<ValueId> id = graph_->Find(name);
    if (!id || rows(*id) != Rows::kEach) continue;
    if (tensor == nullptr || tensor->shape().rank() == 0) return -1;
    const int64_t n = tensor->shape().dim(0);
    if (batch >= 0 && n != batch) return -1;  // the exact run reports the mismatch
    batch = n;
  }
  if (batch <= 0) return -1;
  std::string key = "fetch";
  for (ValueId v : fetches) key += " " + std::to_string(v);
  const int64_t padded = buckets_->Choose(key, batch);
  return padded > batch ? padded : -1;
}

StatusOr<std::vector<Tensor>> Program::RunPadded(const FeedMap& feeds,
                                                 std::span<const ValueId> fetches,
                                                 const RunOptions& options,
                                                 int64_t padded_rows) const {
  if (options.profile != nullptr) options.profile->padded_rows = padded_rows;
  FeedMap padded_feeds = feeds;
  std::vector<Tensor> padded;
  padded.reserve(feeds.size());
  int64_t batch = 0;
  for (auto& [name, tensor] : padded_feeds) {
    if (rows_[static_cast<size_t>(*graph_->Find(name))] != Rows::kEach) continue;
    batch = tensor->shape().dim(0);
    padded.push_back(PadRows(*tensor, padded_rows));
    tensor = &padded.back();
  }
  StatusOr<std::vector<Tensor>> outputs = RunExact(padded_feeds, fetches, options);
  if (!outputs.ok()) {
    const StatusCode code = outputs.status().code();
    if (code == StatusCode::kCancelled || code == StatusCode::kDeadlineExceeded) return outputs;
    // Whatever else failed (a feed's other dimensions, the memory ceiling) is reported, or
    // fits, at the batch's own size.
    if (options.profile != nullptr) options.profile->padded_rows = -1;
    return RunExact(feeds, fetches, options);
  }
  for (size_t i = 0; i < fetches.size(); ++i) {
    if (rows(fetches[i]) == Rows::kEach) (*outputs)[i].KeepRows(batch);
  }
  return outputs;
}

StatusOr<std::vector<Tensor>> Program::RunExact(const FeedMap& feeds,
                                                std::span<const ValueId> fetches,
                                                const RunOptions& options) const {
  RunProfile* profile = options.profile;
  if (profile != nullptr) {
    profile->Begin();
    profile->nodes.clear();  // a padded run that failed and is run again at its own size
  }
  const auto planning =
      profile != nullptr ? RunProfile::Clock::now() : RunProfile::Clock::time_point{};
  std::vector<const Tensor*> by_id;
  bool compiled = false;
  BF_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan,
                      PlanFor(feeds, fetches, &by_id, profile != nullptr ? &compiled : nullptr));
  if (profile != nullptr) {
    profile->plan_ns = profile->Since(RunProfile::Clock::now()) - profile->Since(planning);
    profile->plan_compiled = compiled;
  }
  MemoryBudget::Hold hold;
  if (options.memory != nullptr) {
    BF_ASSIGN_OR_RETURN(hold, options.memory->Reserve(plan->working_bytes(),
                                                      "the run's intermediates and gradients"));
  }
  StatusOr<std::vector<Tensor>> fetched = plan->Execute(by_id, options);
  if (profile != nullptr) profile->End();
  return fetched;
}

StatusOr<Program::PlanInfo> Program::Explain(const FeedMap& feeds,
                                             std::span<const ValueId> fetches) const {
  std::vector<const Tensor*> by_id;
  BF_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, PlanFor(feeds, fetches, &by_id));
  return PlanInfo{plan->num_steps(), plan->num_layout_values(), plan->runs_inline()};
}

StatusOr<std::vector<Tensor>> Program::Run(const FeedMap& feeds,
                                           std::span<const std::string> fetches,
                                           const RunOptions& options) const {
  std::vector<ValueId> ids;
  for (const std::string& name : fetches) {
    std::optional<ValueId> id = graph_->Find(name);
    if (!id) return InvalidArgumentError("fetch '" + name + "': no such tensor in the graph");
    ids.push_back(*id);
  }
  return Run(feeds, ids, options);
}

Program::CacheStats Program::cache_stats() const { return cache_->stats(); }

}  // namespace backflow
