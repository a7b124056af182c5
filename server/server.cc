#include "server/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>

#include "server/auth/token_store.h"
#include "server/data_parallel/replica.h"
#include "server/inference_service.h"
#include "server/metrics_text.h"
#include "server/model.h"
#include "server/names.h"
#include "server/operations.h"
#include "server/reflection.h"
#include "server/service.h"
#include "server/status_page.h"
#include "server/storage/checkpoint_store.h"
#include "server/telemetry/http_endpoint.h"
#include "server/tls_credentials.h"
#include "server/work_queue.h"

namespace backflow::server {

class Server::Impl {
 public:
  Impl(const ServerConfig& config, DataParallel* data_parallel)
      : config_(config), data_parallel_(data_parallel) {}
  ~Impl() { (void)Shutdown(); }

  Status Start();
  Status Shutdown();
  void Wait();
  int port() const { return port_; }
  int metrics_port() const { return http_ == nullptr ? 0 : http_->port(); }
  std::string address() const;

 private:
  Status LoadModels();
  Status SaveDirtyModels();
  void LogTls(const auth::TlsReport& tls) const;
  // Warns when the address is reachable from other machines without TLS or without tokens.
  void WarnIfExposed() const;
  void RegisterReflection(grpc::ServerBuilder& builder);
  // --metrics-listen: /metrics (and the status page) over HTTP.
  Status StartHttp();

  const ServerConfig config_;
  DataParallel* const data_parallel_;  // null unless --data-parallel
  std::unique_ptr<CheckpointStore> store_;
  std::unique_ptr<ComputePool> pool_;
  std::unique_ptr<auth::TokenStore> tokens_;  // --auth-tokens; outlives env_
  std::unique_ptr<ServiceEnv> env_;
  std::unique_ptr<BackflowService> service_;
  std::unique_ptr<InferenceService> inference_;  // the Open Inference Protocol
  std::unique_ptr<ReflectionV1> reflection_v1_;  // --reflection
  std::unique_ptr<ReflectionV1Alpha> reflection_v1alpha_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<HttpEndpoint> http_;  // reads env_: declared after it, so destroyed before

  std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool stopped_ = false;  // GUARDED_BY(mu_)
  Status shutdown_status_;  // GUARDED_BY(mu_)
};

Status Server::Impl::Start() {
  spdlog::set_level(spdlog::level::from_str(config_.log_level));
  CheckpointStoreOptions store_options{.write_delay = config_.checkpoint_write_delay,
                                       .keep_automatic = static_cast<int>(config_.checkpoint_keep)};
  BF_ASSIGN_OR_RETURN(store_, CheckpointStore::Open(config_.data_dir, store_options));
  pool_ = std::make_unique<ComputePool>(config_.compute_threads);
  env_ = std::make_unique<ServiceEnv>(config_, store_.get(), pool_.get());
  env_->data_parallel = data_parallel_;
  if (!config_.auth_tokens.empty()) {
    BF_ASSIGN_OR_RETURN(tokens_, auth::TokenStore::Open(config_.auth_tokens));
    env_->tokens = tokens_.get();
    spdlog::info("tokens: {} from {}", tokens_->Current()->size(), config_.auth_tokens);
  }
  BF_ASSIGN_OR_RETURN(const auth::TlsReport tls, auth::CheckTlsFiles(config_.tls));
  BF_RETURN_IF_ERROR(LoadModels());
  service_ = std::make_unique<BackflowService>(env_.get());
  inference_ = std::make_unique<InferenceService>(env_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  if (config_.reflection) RegisterReflection(builder);
  builder.AddListeningPort(config_.listen, MakeServerCredentials(config_.tls), &port_);
  // gRPC sets SO_REUSEPORT by default: a second server would then share the port silently and
  // clients would alternate between the two. The port is ours alone, or we do not start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const int max_bytes = static_cast<int>(std::min<int64_t>(config_.limits.max_message_bytes,
                                                           std::numeric_limits<int>::max()));
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  if (config_.rpc_threads > 0) {
    grpc::ResourceQuota quota("backflow");
    quota.SetMaxThreads(config_.rpc_threads);
    builder.SetResourceQuota(quota);
  }
  builder.RegisterService(service_.get());
  builder.RegisterService(inference_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return UnavailableError("cannot listen on " + config_.listen +
                            " (address in use, or not a valid host:port)");
  }
  server_->GetHealthCheckService()->SetServingStatus("backflow.v1.Backflow", true);
  server_->GetHealthCheckService()->SetServingStatus(kInferenceServiceName, true);
  server_->GetHealthCheckService()->SetServingStatus(true);
  if (data_parallel_ != nullptr) {
    // Reads and inference still work on rank 0's copy, but the job needs a restart to train.
    data_parallel_->SetOnUnusable([this] {
      spdlog::error("health: NOT_SERVING until the data-parallel job is restarted");
      server_->GetHealthCheckService()->SetServingStatus(false);
    });
  }
  spdlog::info("listening on {}{}", address(),
               config_.tls.mutual()    ? " (mutual TLS)"
               : config_.tls.enabled() ? " (TLS)"
                                       : "");
  LogTls(tls);
  WarnIfExposed();
  return StartHttp();
}

Status Server::Impl::StartHttp() {
  if (config_.metrics_listen.empty()) return Status::Ok();
  const ServiceEnv* env = env_.get();
  std::vector<HttpPage> pages = {
      {"/metrics", "text/plain; version=0.0.4; charset=utf-8", [env] { return MetricsText(*env); }},
      {"/", "text/html; charset=utf-8", [env] { return StatusPage(*env); }},
      {"/api/status", "application/json", [env] { return StatusJson(*env); }},
  };
  StatusOr<std::unique_ptr<HttpEndpoint>> http =
      HttpEndpoint::Start(config_.metrics_listen, std::move(pages));
  if (!http.ok()) {
    if (!config_.metrics_listen_defaulted) return http.status();
    spdlog::warn(
        "no metrics: {} (is another backflow-server running? --metrics-listen=HOST:PORT "
        "picks another address, --metrics-listen= turns this off)",
        http.status().message());
    return Status::Ok();
  }
  http_ = std::move(*http);
  spdlog::info("metrics on {}/metrics, status page on {}/", http_->url(), http_->url());
  if (!IsLoopback(config_.metrics_listen)) {
    spdlog::warn(
        "--metrics-listen {} is reachable from other machines: anyone who reaches it "
        "reads model ids and names, counts and latencies (no tensors, no tokens)",
        config_.metrics_listen);
  }
  return Status::Ok();
}

void Server::Impl::WarnIfExposed() const {
  if (IsLoopback(config_.listen)) return;
  if (!config_.tls.enabled()) {
    spdlog::warn(
        "{} is reachable from other machines and the channel is not encrypted: tokens "
        "and tensors cross the network in clear text; add --tls-cert and --tls-key "
        "(docs/security.md)",
        config_.listen);
  }
  if (config_.auth_tokens.empty()) {
    spdlog::warn(
        "--insecure: no tokens; anyone who reaches {} may read, train and delete "
        "every model",
        config_.listen);
  }
}

void Server::Impl::RegisterReflection(grpc::ServerBuilder& builder) {
  const std::vector<std::string> services = {"backflow.v1.Backflow", kInferenceServiceName,
                                             "grpc.health.v1.Health", kReflectionV1,
                                             kReflectionV1Alpha};
  reflection_v1_ = std::make_unique<ReflectionV1>(env_.get(), services);
  reflection_v1alpha_ = std::make_unique<ReflectionV1Alpha>(env_.get(), services);
  builder.RegisterService(reflection_v1_.get());
  builder.RegisterService(reflection_v1alpha_.get());
}

void Server::Impl::LogTls(const auth::TlsReport& tls) const {
  if (!config_.tls.enabled()) return;
  spdlog::info("TLS certificate {} ({}), re-read every {} s", config_.tls.cert, tls.subject,
               config_.tls.reload_seconds);
  if (config_.tls.mutual()) {
    spdlog::info("mutual TLS: clients need a certificate signed by {}", config_.tls.client_ca);
  }
  for (const std::string& warning : tls.warnings) spdlog::warn("{}", warning);
}

std::string Server::Impl::address() const {
  const size_t colon = config_.listen.rfind(':');
  std::string host = colon == std::string::npos ? config_.listen : config_.listen.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
  return host + ":" + std::to_string(port_);
}

Status Server::Impl::LoadModels() {
  std::vector<std::string> problems;
  std::vector<DamagedModel> damaged;
  std::vector<StoredModel> stored = store_->LoadAll(&problems, &damaged);
  for (const std::string& problem : problems) {
    spdlog::error("data directory: {}", Escaped(problem));
  }
  for (const DamagedModel& entry : damaged) env_->registry.AddDamaged(entry.id, entry.damage);
  for (StoredModel& entry : stored) {
    const std::string id = entry.record.id();
    StatusOr<std::shared_ptr<Model>> model = Model::Create(
        std::move(entry.record), env_->graph_limits, config_.limits.max_tensor_elements,
        pool_.get());
    Status status = model.status().WithPrefix(CheckpointStore::ModelPath(id) + "/model.pb");
    // Counted even past --max-memory: the model exists; what comes after must fit beside it.
    if (status.ok()) {
      (*model)->HoldMemory(env_->memory.Force(Model::EstimateBytes((*model)->record().request())));
    }
    if (status.ok() && entry.checkpoint) {
      status = (*model)
                   ->RestoreCheckpoint(*entry.checkpoint, config_.limits.max_tensor_elements)
                   .WithPrefix(entry.checkpoint_path);
      if (status.ok()) {
        (*model)->MarkSaved((*model)->generation(), entry.checkpoint->step());
        (*model)->schedule().Restart(entry.checkpoint->step(), CheckpointSchedule::Clock::now());
      }
    }
    if (status.ok()) status = env_->registry.Add(*model);
    if (!status.ok()) {
      // Never dropped: listed as damaged, answering DATA_LOSS, until deleted or repaired.
      spdlog::error("model {} not loaded, listed as damaged: {}", Escaped(id),
                    Escaped(status.ToString()));
      env_->registry.AddDamaged(id, DataLossError(status.message()));
      continue;
    }
    spdlog::info("loaded model {} at step {}", id, (*model)->trainer().parameters()->step);
    if (data_parallel_ != nullptr) {
      BF_RETURN_IF_ERROR(data_parallel_->ShareModel(**model).WithPrefix(
          "model " + id + " on the data-parallel ranks"));
    }
  }
  const MemoryBudget& memory = env_->memory;
  if (memory.capacity() > 0 && memory.used() > memory.capacity()) {
    spdlog::warn("the models loaded take {} of --max-memory={} ({}): no model can be created "
                 "and no run can start until some are deleted or the ceiling is raised",
                 ByteSize(memory.used()), memory.capacity(), ByteSize(memory.capacity()));
  }
  return Status::Ok();
}

Status Server::Impl::SaveDirtyModels() {
  Status first;
  for (const std::shared_ptr<Model>& model : env_->registry.All()) {
    if (!model->dirty()) continue;
    StatusOr<v1::SaveCheckpointResponse> saved = ops::SaveCheckpoint(*env_, *model);
    if (saved.ok()) {
      spdlog::info("checkpointed model {} at step {}", model->id(), saved->step());
    } else {
      spdlog::error("model {}: checkpoint failed: {}", model->id(), saved.status().ToString());
      if (first.ok()) first = saved.status();
    }
  }
  return first;
}

Status Server::Impl::Shutdown() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      stopped_cv_.wait(lock, [this] { return stopped_; });
      return shutdown_status_;
    }
    stopping_ = true;
  }
  Status status;
  if (server_ != nullptr) {
    if (data_parallel_ != nullptr) data_parallel_->SetOnUnusable(nullptr);
    spdlog::info("draining: finishing in-flight calls (up to {} ms)", config_.shutdown_grace.count());
    env_->admission.StartDraining();  // refuse new compute first, then tell the health checkers
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(std::chrono::system_clock::now() + config_.shutdown_grace);
    pool_->WaitIdle();
    env_->autosave->Stop();  // automatic writes in flight land before the shutdown checkpoint
    if (config_.autosave.enabled()) {
      spdlog::info("automatic checkpoints: {} written, {} failed", env_->autosave->written(),
                   env_->autosave->failed());
    }
    status = SaveDirtyModels();
    server_->Wait();
    http_.reset();
    spdlog::info("stopped");
  }
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  shutdown_status_ = status;
  stopped_cv_.notify_all();
  return status;
}

void Server::Impl::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  stopped_cv_.wait(lock, [this] { return stopped_; });
}

StatusOr<std::unique_ptr<Server>> Server::Start(const ServerConfig& config,
                                                DataParallel* data_parallel) {
  auto impl = std::make_unique<Impl>(config, data_parallel);
  BF_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;
int Server::port() const { return impl_->port(); }
int Server::metrics_port() const { return impl_->metrics_port(); }
std::string Server::address() const { return impl_->address(); }
Status Server::Shutdown() { return impl_->Shutdown(); }
void Server::Wait() { impl_->Wait(); }

}  // namespace backflow::server
