#include "server/batcher.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace backflow::server {
namespace {

using Clock = std::chrono::steady_clock;

// The rows of every input (their common first dimension), or -1 if they differ or one is a
// scalar.
int64_t CommonRows(const TensorMap& inputs) {
  int64_t rows = -1;
  for (const auto& [name, tensor] : inputs) {
    if (tensor.shape().rank() == 0) return -1;
    const int64_t r = tensor.shape().dims()[0];
    if (rows >= 0 && r != rows) return -1;
    rows = r;
  }
  return rows;
}

bool BatchDimFirst(const Graph& graph, const std::string& name) {
  const std::optional<ValueId> id = graph.Find(name);
  if (!id) return false;
  const std::vector<int64_t>& dims = graph.value(*id).shape.dims();
  return !dims.empty() && dims[0] == kBatchDim;
}

// `rows` rows of `tensor` from row `first` on, as a tensor of their own.
Tensor Rows(const Tensor& tensor, int64_t first, int64_t rows) {
  std::vector<int64_t> dims = tensor.shape().dims();
  const int64_t total = dims[0];
  dims[0] = rows;
  Tensor part(tensor.dtype(), Shape(dims));
  const size_t row_bytes = total == 0 ? 0 : tensor.byte_size() / static_cast<size_t>(total);
  if (part.byte_size() != 0) {
    std::memcpy(part.raw(), tensor.raw() + static_cast<size_t>(first) * row_bytes,
                part.byte_size());
  }
  return part;
}

// The requests' inputs stacked along the first dimension, in order.
TensorMap Stack(const std::vector<const TensorMap*>& parts, int64_t total_rows) {
  TensorMap stacked;
  for (const auto& [name, first] : *parts.front()) {
    std::vector<int64_t> dims = first.shape().dims();
    dims[0] = total_rows;
    Tensor tensor(first.dtype(), Shape(dims));
    std::byte* at = tensor.raw();
    for (const TensorMap* part : parts) {
      const Tensor& piece = part->at(name);
      if (piece.byte_size() != 0) std::memcpy(at, piece.raw(), piece.byte_size());
      at += piece.byte_size();
    }
    stacked.emplace(name, std::move(tensor));
  }
  return stacked;
}

// The latest of the requests' deadlines: the stacked run may go on while any of them waits.
std::optional<Clock::time_point> LatestDeadline(
    const std::vector<std::pair<TensorMap, RunOptions>>& requests,
    const std::vector<size_t>& live) {
  std::optional<Clock::time_point> latest;
  for (size_t i : live) {
    const std::optional<Clock::time_point>& d = requests[i].second.deadline;
    if (!d) return std::nullopt;
    latest = latest ? std::max(*latest, *d) : *d;
  }
  return latest;
}

// Answers the requests cancelled or past their deadline at `now`; the indices of the others.
std::vector<size_t> AnswerAbandoned(const std::vector<std::pair<TensorMap, RunOptions>>& requests,
                                    const std::vector<InferBatcher::Done>& done,
                                    Clock::time_point now) {
  std::vector<size_t> live;
  for (size_t i = 0; i < requests.size(); ++i) {
    const RunOptions& run = requests[i].second;
    if (run.cancelled != nullptr && run.cancelled->load()) {
      done[i]({.outputs = CancelledError("the call was cancelled"), .started = now});
    } else if (run.deadline && *run.deadline <= now) {
      done[i]({.outputs = DeadlineExceededError("the call's deadline passed while it waited"),
               .started = now});
    } else {
      live.push_back(i);
    }
  }
  return live;
}

}  // namespace

void RunBatch(const Model& model, const std::vector<std::string>& outputs,
              std::vector<std::pair<TensorMap, RunOptions>> requests,
              const std::vector<InferBatcher::Done>& done) {
  const std::shared_ptr<const ParameterSnapshot> snapshot = model.trainer().parameters();
  const Clock::time_point started = Clock::now();
  const std::vector<size_t> live = AnswerAbandoned(requests, done, started);
  auto alone = [&](size_t i) {
    const TensorMap& inputs = requests[i].first;
    const int64_t rows = inputs.empty() ? 0 : inputs.begin()->second.shape().dims()[0];
    done[i](
        {.outputs = model.trainer().Infer(*snapshot, Feeds(inputs), outputs, requests[i].second),
         .step = snapshot->step,
         .batch_rows = rows,
         .started = started});
  };
  if (live.size() == 1) alone(live.front());
  if (live.size() <= 1) return;

  std::vector<const TensorMap*> parts;
  std::vector<int64_t> offsets;
  int64_t total = 0;
  for (size_t i : live) {
    parts.push_back(&requests[i].first);
    offsets.push_back(total);
    total += requests[i].first.begin()->second.shape().dims()[0];
  }
  const TensorMap stacked = Stack(parts, total);
  RunOptions run;
  run.deadline = LatestDeadline(requests, live);
  run.memory = requests[live.front()].second.memory;
  StatusOr<std::vector<Tensor>> result =
      model.trainer().Infer(*snapshot, Feeds(stacked), outputs, run);
  const bool split =
      result.ok() && std::all_of(result->begin(), result->end(), [&](const Tensor& t) {
        return t.shape().rank() > 0 && t.shape().dims()[0] == total;
      });
  if (!split) {  // each request alone: an error then fails only the request that causes it
    for (size_t i : live) alone(i);
    return;
  }
  for (size_t k = 0; k < live.size(); ++k) {
    const int64_t rows = parts[k]->begin()->second.shape().dims()[0];
    std::vector<Tensor> mine;
    mine.reserve(result->size());
    for (const Tensor& output : *result) mine.push_back(Rows(output, offsets[k], rows));
    done[live[k]]({.outputs = std::move(mine),
                   .step = snapshot->step,
                   .batch_rows = total,
                   .new_run = k == 0,
                   .started = started});
  }
}

InferBatcher::InferBatcher(ComputePool* pool) : pool_(pool), timer_([this] { TimerLoop(); }) {}

InferBatcher::~InferBatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [key, queue] : queues_) {
      if (!queue.items.empty() && !queue.job_scheduled) ScheduleLocked(key, queue);
    }
  }
  timer_cv_.notify_all();
  timer_.join();
  pool_->WaitIdle();  // the jobs hold `this`
}

bool InferBatcher::Batchable(const Model& model, const TensorMap& inputs,
                             const std::vector<std::string>& outputs) {
  if (inputs.empty() || CommonRows(inputs) < 1) return false;
  const Graph& graph = model.trainer().graph();
  for (const auto& [name, tensor] : inputs) {
    if (!BatchDimFirst(graph, name)) return false;
  }
  return std::all_of(outputs.begin(), outputs.end(), [&](const std::string& name) {
    return BatchDimFirst(graph, name) && model.RowsIndependent(name);
  });
}

std::string InferBatcher::Key(const Model& model, const TensorMap& inputs,
                              const std::vector<std::string>& outputs) {
  // Length-prefixed fields, so no name can make two different requests share a key.
  std::string key;
  auto add = [&key](std::string_view field) {
    key += std::to_string(field.size());
    key += ':';
    key += field;
  };
  add(model.id());
  for (const std::string& name : outputs) add(name);
  std::vector<const std::pair<const std::string, Tensor>*> sorted;
  for (const auto& entry : inputs) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  key += '|';
  for (const auto* entry : sorted) {
    add(entry->first);
    add(DTypeName(entry->second.dtype()));
    const std::vector<int64_t>& dims = entry->second.shape().dims();
    for (size_t d = 1; d < dims.size(); ++d) add(std::to_string(dims[d]));
    key += ';';
  }
  return key;
}

void InferBatcher::Submit(std::shared_ptr<Model> model, const BatchSettings& settings,
                          TensorMap inputs, std::vector<std::string> outputs, RunOptions run,
                          Done done) {
  const std::string key = Key(*model, inputs, outputs);
  const int64_t rows = CommonRows(inputs);
  std::lock_guard lock(mu_);
  Queue& queue = queues_[key];
  if (queue.model == nullptr) {
    queue.model = std::move(model);
    queue.outputs = std::move(outputs);
    queue.settings = settings;
  }
  queue.items.push_back({std::move(inputs), rows, run, std::move(done)});
  queue.rows += rows;
  if (queue.job_scheduled) return;  // the job takes this request too when it starts
  if (stopping_ || settings.delay.count() == 0 || queue.rows >= settings.max_rows) {
    ScheduleLocked(key, queue);
  } else if (!queue.due) {
    queue.due = Clock::now() + settings.delay;
    timer_cv_.notify_one();
  }
}

void InferBatcher::ScheduleLocked(const std::string& key, Queue& queue) {
  queue.job_scheduled = true;
  queue.due.reset();
  pool_->Submit([this, key] { RunJob(key); });
}

void InferBatcher::RunJob(const std::string& key) {
  std::shared_ptr<Model> model;
  std::vector<std::string> outputs;
  std::vector<std::pair<TensorMap, RunOptions>> requests;
  std::vector<Done> done;
  {
    std::lock_guard lock(mu_);
    auto it = queues_.find(key);
    Queue& queue = it->second;
    int64_t taken = 0;
    while (!queue.items.empty() &&
           (requests.empty() || taken + queue.items.front().rows <= queue.settings.max_rows)) {
      Item& item = queue.items.front();
      taken += item.rows;
      requests.emplace_back(std::move(item.inputs), item.run);
      done.push_back(std::move(item.done));
      queue.items.pop_front();
    }
    queue.rows -= taken;
    queue.job_scheduled = false;
    model = queue.model;
    outputs = queue.outputs;
    if (queue.items.empty()) {
      queues_.erase(it);
    } else {  // what did not fit has waited as long as this batch: its own job, now
      ScheduleLocked(key, queue);
    }
  }
  RunBatch(*model, outputs, std::move(requests), done);
}

void InferBatcher::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    std::optional<Clock::time_point> next;
    const Clock::time_point now = Clock::now();
    for (auto& [key, queue] : queues_) {
      if (!queue.due || queue.job_scheduled) continue;
      if (*queue.due <= now) {
        ScheduleLocked(key, queue);
      } else {
        next = next ? std::min(*next, *queue.due) : *queue.due;
      }
    }
    if (next) {
      timer_cv_.wait_until(lock, *next);
    } else {
      timer_cv_.wait(lock);
    }
  }
}

}  // namespace backflow::server
