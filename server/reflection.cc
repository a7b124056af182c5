// Server reflection (reflection.h). Both versions share one reactor: their messages have the
// same fields, so the answer is written once, as a template over the message types.
#include "server/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "engine/core/tsan.h"
#include "grpc/health/v1/health.pb.h"
#include "server/caller_check.h"
#include "server/grpc_status.h"

namespace backflow::server {
namespace {

namespace pb = google::protobuf;

// The descriptors of the services the server registers live in the generated pool once their
// generated code is linked; health's is linked here for that alone (gRPC's own health service
// carries no protobuf descriptors).
const pb::DescriptorPool& Pool() {
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  return *pb::DescriptorPool::generated_pool();
}

// `file` and every file it imports, each once, dependencies first (as grpc's reflection does,
// so a client can build its pool from one answer).
template <typename FileResponse>
void AddFileAndDependencies(const pb::FileDescriptor* file, std::set<std::string>* seen,
                            FileResponse* out) {
  if (!seen->insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndDependencies(file->dependency(i), seen, out);
  }
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
}

template <typename Response>
void NotFound(const std::string& what, Response* response) {
  response->mutable_error_response()->set_error_code(grpc::StatusCode::NOT_FOUND);
  response->mutable_error_response()->set_error_message(what + " not found");
}

template <typename Request, typename Response>
void Answer(const Request& request, const std::vector<std::string>& services, Response* response) {
  response->set_valid_host(request.host());
  *response->mutable_original_request() = request;
  const pb::DescriptorPool& pool = Pool();
  std::set<std::string> seen;
  switch (request.message_request_case()) {
    case Request::kListServices:
      for (const std::string& name : services) {
        response->mutable_list_services_response()->add_service()->set_name(name);
      }
      return;
    case Request::kFileByFilename:
      if (const pb::FileDescriptor* file = pool.FindFileByName(request.file_by_filename())) {
        return AddFileAndDependencies(file, &seen, response->mutable_file_descriptor_response());
      }
      return NotFound("file '" + request.file_by_filename() + "'", response);
    case Request::kFileContainingSymbol:
      if (const pb::FileDescriptor* file =
              pool.FindFileContainingSymbol(request.file_containing_symbol())) {
        return AddFileAndDependencies(file, &seen, response->mutable_file_descriptor_response());
      }
      return NotFound("symbol '" + request.file_containing_symbol() + "'", response);
    case Request::kFileContainingExtension: {
      const auto& wanted = request.file_containing_extension();
      const pb::Descriptor* type = pool.FindMessageTypeByName(wanted.containing_type());
      const pb::FieldDescriptor* extension =
          type == nullptr ? nullptr : pool.FindExtensionByNumber(type, wanted.extension_number());
      if (extension != nullptr) {
        return AddFileAndDependencies(extension->file(), &seen,
                                      response->mutable_file_descriptor_response());
      }
      return NotFound("extension " + std::to_string(wanted.extension_number()) + " of '" +
                          wanted.containing_type() + "'",
                      response);
    }
    case Request::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type =
          pool.FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        return NotFound("type '" + request.all_extension_numbers_of_type() + "'", response);
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool.FindAllExtensions(type, &extensions);
      auto* numbers = response->mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const pb::FieldDescriptor* extension : extensions) {
        numbers->add_extension_number(extension->number());
      }
      return;
    }
    default:
      response->mutable_error_response()->set_error_code(grpc::StatusCode::INVALID_ARGUMENT);
      response->mutable_error_response()->set_error_message("the request asks for nothing");
  }
}

// One reflection stream: read a request, write its answer, until the client closes its side.
// The caller's token is checked once, when the stream opens.
template <typename Request, typename Response>
class Reactor final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  // Every callback acquires and every operation it starts releases `this`: gRPC orders the
  // callbacks after the operations through its uninstrumented core, on any of its threads, and
  // ThreadSanitizer must see that ordering (as for UnaryCall and TrainStream).
  Reactor(ServiceEnv* env, const std::vector<std::string>* services,
          grpc::CallbackServerContext* ctx)
      : services_(services) {
    BF_TSAN_RELEASE(this);
    if (Status allowed = CheckCaller(*env, ctx, "ServerReflectionInfo", std::nullopt);
        !allowed.ok()) {
      this->Finish(ToGrpcStatus(allowed));
      return;
    }
    this->StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    BF_TSAN_ACQUIRE(this);
    if (!ok) {  // the client is done (or gone)
      BF_TSAN_RELEASE(this);
      return this->Finish(grpc::Status::OK);
    }
    response_.Clear();
    Answer(request_, *services_, &response_);
    BF_TSAN_RELEASE(this);
    this->StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    BF_TSAN_ACQUIRE(this);
    BF_TSAN_RELEASE(this);
    if (!ok) return this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client left"));
    this->StartRead(&request_);
  }
  void OnDone() override {
    BF_TSAN_ACQUIRE(this);
    delete this;
  }

 private:
  const std::vector<std::string>* services_;
  Request request_;
  Response response_;
};

}  // namespace

grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                        grpc::reflection::v1::ServerReflectionResponse>*
ReflectionV1::ServerReflectionInfo(grpc::CallbackServerContext* ctx) {
  return new Reactor<grpc::reflection::v1::ServerReflectionRequest,
                     grpc::reflection::v1::ServerReflectionResponse>(env_, &services_, ctx);
}

grpc::ServerBidiReactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                        grpc::reflection::v1alpha::ServerReflectionResponse>*
ReflectionV1Alpha::ServerReflectionInfo(grpc::CallbackServerContext* ctx) {
  return new Reactor<grpc::reflection::v1alpha::ServerReflectionRequest,
                     grpc::reflection::v1alpha::ServerReflectionResponse>(env_, &services_, ctx);
}

}  // namespace backflow::server
