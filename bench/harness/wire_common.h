// What backflow-bench's measurements over gRPC share (wire_work.cc, infer_work.cc): the
// connection, model creation and deletion, and the synthetic batches on the wire.
#ifndef BACKFLOW_BENCH_HARNESS_WIRE_COMMON_H_
#define BACKFLOW_BENCH_HARNESS_WIRE_COMMON_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "backflow/v1/service.grpc.pb.h"
#include "bench/harness/common.h"

namespace backflow::bench {

// Prints "backflow-bench: WHAT: STATUS" and exits 1.
[[noreturn]] void Die(const std::string& what, const grpc::Status& status);

struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Backflow::Stub> stub;
};

// With a token and TLS from the environment (the security rows of bench/run); exits 1 if the
// server cannot be reached within 10 s.
Connection Connect(const std::string& address);

// The model of `path` (bench/harness/common.h ModelFile): its graph, or its ONNX bytes.
std::string CreateModelOrDie(v1::Backflow::Stub& stub, const std::string& path);
void DeleteModel(v1::Backflow::Stub& stub, const std::string& id);  // best effort

double MicrosSince(Clock::time_point t0);

// The synthetic batches of `graph` (seeds first, first + 1, ...), as in engine_work.cc.
google::protobuf::Map<std::string, v1::Tensor> WireBatch(const v1::Graph& graph, int64_t batch,
                                                         uint64_t seed);

}  // namespace backflow::bench

#endif  // BACKFLOW_BENCH_HARNESS_WIRE_COMMON_H_
