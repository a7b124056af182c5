#include "bench/harness/wire_common.h"

#include <cstdlib>
#include <iostream>

#include "clients/common/rpc.h"
#include "clients/common/synthetic.h"

namespace backflow::bench {

[[noreturn]] void Die(const std::string& what, const grpc::Status& status) {
  std::cerr << "backflow-bench: " << what << ": " << clients::FormatStatus(status) << "\n";
  std::exit(1);
}

Connection Connect(const std::string& address) {
  const StatusOr<clients::ChannelOptions> options = clients::ChannelOptionsFromEnvironment();
  if (!options.ok())
    Die("the environment", grpc::Status(grpc::INVALID_ARGUMENT, options.status().message()));
  Connection c{clients::OpenChannel(address, *options), nullptr};
  if (!c.channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::cerr << "backflow-bench: cannot reach the server at " << address << "\n";
    std::exit(1);
  }
  c.stub = v1::Backflow::NewStub(c.channel);
  return c;
}

std::string CreateModelOrDie(v1::Backflow::Stub& stub, const std::string& path) {
  const v1::CreateModelRequest request = CreateRequestFor(path);
  v1::ModelInfo info;
  grpc::ClientContext context;
  const grpc::Status status = stub.CreateModel(&context, request, &info);
  if (!status.ok()) Die("CreateModel", status);
  return info.id();
}

void DeleteModel(v1::Backflow::Stub& stub, const std::string& id) {
  v1::DeleteModelRequest request;
  request.set_model_id(id);
  v1::DeleteModelResponse response;
  grpc::ClientContext context;
  stub.DeleteModel(&context, request, &response);  // best effort: the run's figures are taken
}

double MicrosSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

google::protobuf::Map<std::string, v1::Tensor> WireBatch(const v1::Graph& graph, int64_t batch,
                                                         uint64_t seed) {
  const clients::SyntheticSpec spec{.batch = batch, .classes = SyntheticClasses(graph)};
  return clients::SyntheticBatch(graph, spec, seed);
}

}  // namespace backflow::bench
