// Server reflection: grpc.reflection.v1 and its predecessor v1alpha, served from the protobuf
// descriptors linked into the server, so that grpcurl, grpc_cli, Postman and friends can list
// the services and call them without the .proto files.
//
// Ours rather than libgrpc++_reflection's for two reasons: that library serves only v1alpha
// (current tools ask for v1 first), and it cannot ask for a token. With --auth-tokens a stream
// needs a token with the read role like any other read (docs/security.md); --reflection=off
// removes both services.
#ifndef BACKFLOW_SERVER_REFLECTION_H_
#define BACKFLOW_SERVER_REFLECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace backflow::server {

struct ServiceEnv;

class ReflectionV1 final : public grpc::reflection::v1::ServerReflection::CallbackService {
 public:
  // `services`: the full names ListServices reports.
  ReflectionV1(ServiceEnv* env, std::vector<std::string> services)
      : env_(env), services_(std::move(services)) {}
  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* ctx) override;

 private:
  ServiceEnv* env_;
  const std::vector<std::string> services_;
};

class ReflectionV1Alpha final
    : public grpc::reflection::v1alpha::ServerReflection::CallbackService {
 public:
  ReflectionV1Alpha(ServiceEnv* env, std::vector<std::string> services)
      : env_(env), services_(std::move(services)) {}
  grpc::ServerBidiReactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                          grpc::reflection::v1alpha::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* ctx) override;

 private:
  ServiceEnv* env_;
  const std::vector<std::string> services_;
};

// The names of the two reflection services, for the lists above.
inline constexpr char kReflectionV1[] = "grpc.reflection.v1.ServerReflection";
inline constexpr char kReflectionV1Alpha[] = "grpc.reflection.v1alpha.ServerReflection";

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_REFLECTION_H_
