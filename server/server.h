// Server: backflow.v1.Backflow, grpc.health.v1 and server reflection on one gRPC server.
//
// Start() opens the data directory, loads the models it holds (each at its latest
// checkpoint), binds the listen address and starts serving. Shutdown() drains: health turns
// NOT_SERVING, new calls are refused, in-flight calls get up to shutdown_grace to finish (then
// they are cancelled, which stops their compute between two nodes), and every model trained
// since its last checkpoint is checkpointed. backflow-server (server/main.cc) calls it on
// SIGTERM and SIGINT; tests call it directly.
#ifndef BACKFLOW_SERVER_SERVER_H_
#define BACKFLOW_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "engine/core/status.h"
#include "server/config.h"

namespace backflow::server {

class DataParallel;

class Server {
 public:
  // Fails (with a Status naming the path or address) if the data directory cannot be opened or
  // the address cannot be bound.
  // With `data_parallel` (rank 0 of a job: server/data_parallel/replica.h, outliving the
  // server), every model loaded is sent to the other ranks before the server listens, and
  // every later change and step goes through it.
  static StatusOr<std::unique_ptr<Server>> Start(const ServerConfig& config,
                                                 DataParallel* data_parallel = nullptr);
  ~Server();  // Shutdown() if not done yet

  int port() const;  // the bound port (the chosen one when config.listen ends in ":0")
  std::string address() const;  // host:port to connect to
  // The bound port of config.metrics_listen; 0 when it is empty or could not be bound.
  int metrics_port() const;
  // Idempotent; returns the first problem met while saving models (the drain itself cannot
  // fail). Blocks until everything is stopped.
  Status Shutdown();
  // Blocks until Shutdown() has finished (from another thread).
  void Wait();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_SERVER_H_
