#include "server/metrics_text.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <deque>
#include <iterator>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/exec/program.h"
#include "server/data_parallel/replica.h"
#include "server/service_env.h"
#include "server/telemetry/process_stats.h"

namespace backflow::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

class Families {
 public:
  MetricFamily& Add(std::string name, std::string help, MetricType type) {
    families_.push_back({std::move(name), std::move(help), type, {}});
    return families_.back();
  }
  // A family with one unlabelled sample.
  void Gauge(std::string name, std::string help, double value) {
    Add(std::move(name), std::move(help), MetricType::Gauge).metric.push_back(GaugeOf(value));
  }
  void Counter(std::string name, std::string help, double value) {
    ClientMetric metric;
    metric.counter.value = value;
    Add(std::move(name), std::move(help), MetricType::Counter).metric.push_back(metric);
  }
  static ClientMetric GaugeOf(double value, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric metric;
    metric.gauge.value = value;
    metric.label = std::move(labels);
    return metric;
  }
  std::vector<MetricFamily> Take() {
    return {std::make_move_iterator(families_.begin()), std::make_move_iterator(families_.end())};
  }

 private:
  std::deque<MetricFamily> families_;  // a deque: Add's references stay valid
};

void ServerState(const ServiceEnv& env, Families& out) {
  out.Gauge("backflow_requests_in_flight",
            "Compute requests admitted and not yet answered (--max-pending-requests)",
            static_cast<double>(env.admission.requests_in_flight()));
  out.Gauge("backflow_requests_queued", "Requests admitted whose work has not started",
            static_cast<double>(env.metrics->queued()));
  out.Gauge("backflow_open_streams", "Train and checkpoint streams open (--max-streams)",
            static_cast<double>(env.admission.streams_open()));
  out.Gauge("backflow_memory_used_bytes",
            "Bytes of the memory budget held by models, runs in progress and caches",
            static_cast<double>(env.memory.used()));
  out.Gauge("backflow_memory_limit_bytes", "The memory budget (--max-memory); 0: no ceiling",
            static_cast<double>(env.memory.capacity()));
  out.Gauge("backflow_buffer_cache_bytes", "Freed tensor blocks kept for reuse",
            static_cast<double>(CachedBufferBytes()));
  out.Gauge("backflow_idle_plan_buffer_bytes", "Buffers idle compiled plans keep between runs",
            static_cast<double>(IdleBufferBytes()));
  const EvaluateCache::Stats evaluated = env.evaluate_cache->stats();
  out.Counter("backflow_evaluate_cache_hits_total",
              "Evaluate calls whose graph was prepared and compiled already "
              "(--evaluate-cache-entries)",
              static_cast<double>(evaluated.hits));
  out.Counter("backflow_evaluate_cache_misses_total",
              "Evaluate calls that imported and prepared their graph",
              static_cast<double>(evaluated.misses));
  out.Gauge("backflow_evaluate_cache_entries", "Evaluate graphs kept prepared",
            static_cast<double>(evaluated.entries));
  if (env.data_parallel != nullptr) {
    const DataParallel::Stats job = env.data_parallel->stats();
    out.Gauge("backflow_data_parallel_ranks", "Ranks of this data-parallel job (docs/scaling.md)",
              static_cast<double>(env.data_parallel->ranks()));
    out.Counter("backflow_data_parallel_checksums_total",
                "Comparisons of a model's copies on every rank that agreed",
                static_cast<double>(job.checksums));
    out.Counter("backflow_data_parallel_checksum_mismatches_total",
                "Comparisons of a model's copies in which some rank's differed",
                static_cast<double>(job.mismatches));
    out.Gauge("backflow_data_parallel_usable",
              "1 while the job can train; 0 once a rank is lost or the copies differ",
              job.usable ? 1.0 : 0.0);
  }
  const ProcessStats process = ReadProcessStats();
  out.Gauge("process_resident_memory_bytes", "Resident memory size in bytes",
            static_cast<double>(process.resident_bytes));
  out.Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes",
            static_cast<double>(process.virtual_bytes));
  out.Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds",
              process.cpu_seconds);
  out.Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds",
            process.start_time_seconds);
  out.Gauge("process_open_fds", "Number of open file descriptors",
            static_cast<double>(process.open_fds));
  out.Gauge("process_threads", "Number of OS threads in the process",
            static_cast<double>(process.threads));
}

void ModelState(const ServiceEnv& env, Families& out) {
  const std::vector<std::shared_ptr<Model>> models = env.registry.All();
  const std::vector<std::pair<std::string, Status>> damaged = env.registry.Damaged();
  MetricFamily& count = out.Add("backflow_models", "Models held, by state", MetricType::Gauge);
  count.metric.push_back(
      Families::GaugeOf(static_cast<double>(models.size()), {{"state", "ready"}}));
  count.metric.push_back(
      Families::GaugeOf(static_cast<double>(damaged.size()), {{"state", "damaged"}}));
  MetricFamily& info = out.Add("backflow_model_info",
                               "1 per model, labelled with its name and dtype", MetricType::Gauge);
  MetricFamily& step = out.Add("backflow_model_step", "The model's step number", MetricType::Gauge);
  MetricFamily& loss =
      out.Add("backflow_model_loss", "The loss of the model's last step in this process",
              MetricType::Gauge);
  MetricFamily& steps = out.Add("backflow_train_steps_total",
                                "Training steps taken in this process", MetricType::Counter);
  MetricFamily& trained =
      out.Add("backflow_trained_samples_total", "Rows of the batches trained on in this process",
              MetricType::Counter);
  MetricFamily& inferred =
      out.Add("backflow_inferred_samples_total",
              "Rows inferred (Infer and ModelInfer) in this process", MetricType::Counter);
  MetricFamily& step_time =
      out.Add("backflow_train_step_seconds",
              "A training step's forward, backward and optimizer update", MetricType::Histogram);
  MetricFamily& plans =
      out.Add("backflow_plan_cache_entries", "Compiled plans the model keeps", MetricType::Gauge);
  for (const std::shared_ptr<Model>& model : models) {
    const std::vector<ClientMetric::Label> id = {{"model", model->id()}};
    info.metric.push_back(Families::GaugeOf(1, {{"dtype", std::string(DTypeName(model->dtype()))},
                                                {"model", model->id()},
                                                {"name", model->name()}}));
    step.metric.push_back(
        Families::GaugeOf(static_cast<double>(model->trainer().parameters()->step), id));
    const TrainingStats::Totals training = model->training_stats().Read();
    if (!std::isnan(training.last_loss)) {
      loss.metric.push_back(Families::GaugeOf(training.last_loss, id));
    }
    ClientMetric counter;
    counter.label = id;
    counter.counter.value = static_cast<double>(training.steps);
    steps.metric.push_back(counter);
    counter.counter.value = static_cast<double>(training.samples);
    trained.metric.push_back(counter);
    counter.counter.value = static_cast<double>(model->inference_stats().Read().rows);
    inferred.metric.push_back(counter);
    ClientMetric histogram = model->training_stats().StepSeconds();
    histogram.label = id;
    step_time.metric.push_back(std::move(histogram));
    plans.metric.push_back(
        Families::GaugeOf(static_cast<double>(model->trainer().plan_cache_stats().plans), id));
  }
}

}  // namespace

std::string MetricsText(const ServiceEnv& env) {
  std::vector<MetricFamily> families = env.metrics->registry().Collect();
  Families state;
  ServerState(env, state);
  ModelState(env, state);
  for (MetricFamily& family : state.Take()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace backflow::server
