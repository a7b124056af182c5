// Server reflection on a real server: grpc.reflection.v1 and v1alpha list the services and
// serve the descriptors of any symbol or file with their imports; unknown names get a
// NOT_FOUND error response on a stream that stays open; --reflection=off removes both
// services; with --auth-tokens a stream needs a token with the read role.
#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/auth/tokens.h"
#include "tests/process/process_fixture.h"

namespace backflow::testing {
namespace {

namespace v1r = grpc::reflection::v1;
namespace alpha = grpc::reflection::v1alpha;

class ReflectionTest : public ::testing::Test {
 protected:
  void Launch(const std::vector<std::string>& flags = {}) {
    ASSERT_GT(server_.Start(temp_.path() + "/data", flags), 0);
    channel_ = ConnectTo(server_.address());
  }
  void TearDown() override { server_.Stop(SIGTERM, std::chrono::seconds(30)); }

  // Sends each request on one v1 stream, returns the answers and the final status.
  grpc::Status AskV1(const std::vector<v1r::ServerReflectionRequest>& requests,
                     std::vector<v1r::ServerReflectionResponse>* answers,
                     const std::string& token = "") {
    auto context = Deadline();
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    auto stream = v1r::ServerReflection::NewStub(channel_)->ServerReflectionInfo(context.get());
    for (const auto& request : requests) {
      v1r::ServerReflectionResponse answer;
      if (!stream->Write(request) || !stream->Read(&answer)) break;
      answers->push_back(answer);
    }
    stream->WritesDone();
    return stream->Finish();
  }

  ProcessTempDir temp_;
  ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
};

v1r::ServerReflectionRequest ListServices() {
  v1r::ServerReflectionRequest request;
  request.set_list_services("*");
  return request;
}
v1r::ServerReflectionRequest Symbol(const std::string& symbol) {
  v1r::ServerReflectionRequest request;
  request.set_file_containing_symbol(symbol);
  return request;
}

std::set<std::string> Names(const v1r::ServerReflectionResponse& answer) {
  std::set<std::string> names;
  for (const auto& service : answer.list_services_response().service()) {
    names.insert(service.name());
  }
  return names;
}

TEST_F(ReflectionTest, V1ListsServicesAndServesDescriptorsWithTheirImports) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  v1r::ServerReflectionRequest by_file;
  by_file.set_file_by_filename("grpc/health/v1/health.proto");
  std::vector<v1r::ServerReflectionResponse> answers;
  const grpc::Status status =
      AskV1({ListServices(), Symbol("backflow.v1.Backflow.TrainStep"), Symbol("no.Such"), by_file},
            &answers);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(Names(answers[0]),
            (std::set<std::string>{"backflow.v1.Backflow", "inference.GRPCInferenceService",
                                   "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                                   "grpc.reflection.v1alpha.ServerReflection"}));

  // The file of the method, after every file it imports.
  std::vector<std::string> files;
  google::protobuf::FileDescriptorProto last;
  for (const std::string& bytes : answers[1].file_descriptor_response().file_descriptor_proto()) {
    ASSERT_TRUE(last.ParseFromString(bytes));
    files.push_back(last.name());
  }
  ASSERT_FALSE(files.empty()) << answers[1].ShortDebugString();
  EXPECT_EQ(files.back(), "backflow/v1/service.proto");
  EXPECT_EQ(std::set<std::string>(files.begin(), files.end()).size(), files.size());
  for (const std::string& import : last.dependency()) {
    EXPECT_NE(std::find(files.begin(), files.end(), import), files.end()) << import;
  }
  ASSERT_EQ(last.service_size(), 1);
  EXPECT_EQ(last.service(0).name(), "Backflow");
  EXPECT_EQ(answers[1].original_request().file_containing_symbol(),
            "backflow.v1.Backflow.TrainStep");

  EXPECT_EQ(answers[2].error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(answers[2].error_response().error_message(), "symbol 'no.Such' not found");
  ASSERT_EQ(answers[3].file_descriptor_response().file_descriptor_proto_size(), 1);
}

TEST_F(ReflectionTest, V1AlphaAnswersLikeV1) {
  ASSERT_NO_FATAL_FAILURE(Launch());
  auto context = Deadline();
  auto stream = alpha::ServerReflection::NewStub(channel_)->ServerReflectionInfo(context.get());
  alpha::ServerReflectionRequest request;
  request.set_file_containing_symbol("backflow.v1.Tensor");
  ASSERT_TRUE(stream->Write(request));
  alpha::ServerReflectionResponse answer;
  ASSERT_TRUE(stream->Read(&answer));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  google::protobuf::FileDescriptorProto file;
  const auto& protos = answer.file_descriptor_response().file_descriptor_proto();
  ASSERT_FALSE(protos.empty()) << answer.ShortDebugString();
  ASSERT_TRUE(file.ParseFromString(*protos.rbegin()));
  EXPECT_EQ(file.name(), "backflow/v1/tensor.proto");
}

TEST_F(ReflectionTest, OffRemovesBothVersions) {
  ASSERT_NO_FATAL_FAILURE(Launch({"--reflection=off"}));
  std::vector<v1r::ServerReflectionResponse> answers;
  const grpc::Status status = AskV1({ListServices()}, &answers);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
  EXPECT_TRUE(answers.empty());
}

TEST_F(ReflectionTest, WithTokensAStreamNeedsAReadToken) {
  const std::string tokens = temp_.path() + "/tokens.txt";
  std::ofstream(tokens) << "sha256:" << server::auth::ToHex(server::auth::Sha256("reader-secret"))
                        << " read name=reader\n";
  ASSERT_NO_FATAL_FAILURE(Launch({"--auth-tokens=" + tokens}));
  std::vector<v1r::ServerReflectionResponse> answers;
  const grpc::Status anonymous = AskV1({ListServices()}, &answers);
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAUTHENTICATED) << anonymous.error_message();
  EXPECT_TRUE(answers.empty());
  EXPECT_EQ(AskV1({ListServices()}, &answers, "wrong").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status reader = AskV1({ListServices()}, &answers, "reader-secret");
  EXPECT_TRUE(reader.ok()) << reader.error_message();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(Names(answers[0]).count("backflow.v1.Backflow"), 1u);
}

}  // namespace
}  // namespace backflow::testing
