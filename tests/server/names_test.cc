// Names clients send (server/names.h): escaped and shortened when echoed, and over their limit
// RESOURCE_EXHAUSTED in every RPC that takes them, with a short message; a megabyte-long model
// id used to come back whole in the status, which the client then failed to receive.
#include "server/names.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using grpc::StatusCode;
using server::CheckLength;
using server::Escaped;
using server::Quoted;

TEST(NamesTest, EscapedShowsControlCharactersAsEscapes) {
  EXPECT_EQ(Escaped("plain-id_1"), "plain-id_1");
  EXPECT_EQ(Escaped("a\nb\rc\td\\e'f\x7fg"), "a\\nb\\rc\\td\\\\e\\'f\\x7fg");
  EXPECT_EQ(Escaped(std::string("nul\0end\x1b", 8)), "nul\\x00end\\x1b");
  EXPECT_EQ(Escaped("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 stays as it is
}

TEST(NamesTest, QuotedShortensLongNamesOnACharacterBoundary) {
  EXPECT_EQ(Quoted("w1"), "'w1'");
  EXPECT_EQ(Quoted(std::string(64, 'a')), "'" + std::string(64, 'a') + "'");
  EXPECT_EQ(Quoted(std::string(65, 'a')), "'" + std::string(64, 'a') + "...' (65 bytes)");
  // 63 ASCII bytes, then a 2-byte character across the cut: it is left out whole.
  EXPECT_EQ(Quoted(std::string(63, 'a') + "\xc3\xa9xyz"), "'" + std::string(63, 'a') + "...' (68 bytes)");
  std::string newlines;
  for (int i = 0; i < 64; ++i) newlines += "\\n";  // the first 64 bytes, each escaped
  EXPECT_EQ(Quoted(std::string(70, '\n')), "'" + newlines + "...' (70 bytes)");
}

TEST(NamesTest, CheckLengthIsResourceExhaustedPastTheLimit) {
  EXPECT_TRUE(CheckLength("name", std::string(256, 'n'), 256).ok());
  const Status long_name = CheckLength("name", std::string(257, 'n'), 256);
  EXPECT_EQ(long_name.code(), backflow::StatusCode::kResourceExhausted);
  EXPECT_EQ(long_name.message(),
            "name '" + std::string(64, 'n') + "...' (257 bytes): longer than the limit of 256 bytes");
}

constexpr size_t kMegabyte = size_t{1} << 20;

// The message every RPC gives for a 1 MB model id of 'a's.
std::string LongIdMessage() {
  return "model id '" + std::string(64, 'a') +
         "...' (1048576 bytes): longer than the limit of 64 bytes";
}

using NamedCall = std::pair<std::string, std::function<grpc::Status()>>;

class LongNamesTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    info_ = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
    ASSERT_FALSE(info_.id().empty());
  }

  // Every RPC that takes a model id, given `id`.
  std::vector<NamedCall> ModelCalls(const std::string& id) {
    v1::Backflow::Stub& s = *stub_;
    auto batch = [] {
      google::protobuf::Map<std::string, v1::Tensor> wire;
      TinyBatch(1).ToWire(&wire);
      return wire;
    };
    return {
        {"GetModel", [&s, id] { v1::GetModelRequest r; r.set_model_id(id); v1::ModelInfo a;
                                return s.GetModel(Context().get(), r, &a); }},
        {"DeleteModel", [&s, id] { v1::DeleteModelRequest r; r.set_model_id(id);
                                   v1::DeleteModelResponse a;
                                   return s.DeleteModel(Context().get(), r, &a); }},
        {"Infer", [&s, id, batch] { v1::InferRequest r; r.set_model_id(id);
                                    *r.mutable_inputs() = batch(); v1::InferResponse a;
                                    return s.Infer(Context().get(), r, &a); }},
        {"ComputeGradients", [&s, id, batch] { v1::ComputeGradientsRequest r; r.set_model_id(id);
                                               *r.mutable_batch() = batch();
                                               v1::ComputeGradientsResponse a;
                                               return s.ComputeGradients(Context().get(), r, &a); }},
        {"TrainStep", [&s, id, batch] { v1::TrainStepRequest r; r.set_model_id(id);
                                        *r.mutable_batch() = batch(); v1::TrainStepResponse a;
                                        return s.TrainStep(Context().get(), r, &a); }},
        {"GetParameters", [&s, id] { v1::GetParametersRequest r; r.set_model_id(id);
                                     v1::GetParametersResponse a;
                                     return s.GetParameters(Context().get(), r, &a); }},
        {"SetParameters", [&s, id] { v1::SetParametersRequest r; r.set_model_id(id);
                                     v1::SetParametersResponse a;
                                     return s.SetParameters(Context().get(), r, &a); }},
        {"SaveCheckpoint", [&s, id] { v1::SaveCheckpointRequest r; r.set_model_id(id);
                                      v1::SaveCheckpointResponse a;
                                      return s.SaveCheckpoint(Context().get(), r, &a); }},
        {"RestoreCheckpoint", [&s, id] { v1::RestoreCheckpointRequest r; r.set_model_id(id);
                                         v1::RestoreCheckpointResponse a;
                                         return s.RestoreCheckpoint(Context().get(), r, &a); }},
        {"CheckGradients", [&s, id] { v1::CheckGradientsRequest r; r.set_model_id(id);
                                      v1::CheckGradientsResponse a;
                                      return s.CheckGradients(Context().get(), r, &a); }},
        {"ExportModel", [&s, id] { v1::ExportModelRequest r; r.set_model_id(id);
                                   v1::ExportModelResponse a;
                                   return s.ExportModel(Context().get(), r, &a); }},
    };
  }

  // The model is still there at step 0, with the parameters it was created with.
  void ExpectModelUnchanged() {
    const v1::GetParametersResponse now = GetParameters(*stub_, info_.id());
    EXPECT_EQ(now.step(), 0);
    EXPECT_EQ(now.parameters().size(), 4u);
  }

  v1::ModelInfo info_;
};

TEST_F(LongNamesTest, AMegabyteModelIdIsResourceExhaustedWithAShortMessageInEveryRpc) {
  const std::string id(kMegabyte, 'a');
  for (auto& [rpc, call] : ModelCalls(id)) {
    const grpc::Status status = call();
    EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED) << rpc;
    EXPECT_EQ(status.error_message(), LongIdMessage()) << rpc;
  }
  // The Train stream: its first request.
  std::unique_ptr<grpc::ClientContext> context = Context();
  auto stream = stub_->Train(context.get());
  v1::TrainStepRequest request;
  request.set_model_id(id);
  TinyBatch(1).ToWire(request.mutable_batch());
  EXPECT_TRUE(stream->Write(request));
  stream->WritesDone();
  v1::TrainStepResponse response;
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "request 0: " + LongIdMessage());
  ExpectModelUnchanged();
}

TEST_F(LongNamesTest, AModelIdJustOverTheLimitIsResourceExhaustedAndOneWithinItNotFound) {
  for (auto& [rpc, call] : ModelCalls(std::string(65, 'b'))) {
    EXPECT_TRUE(HasStatus(call(), StatusCode::RESOURCE_EXHAUSTED,
                          "...' (65 bytes): longer than the limit of 64 bytes"))
        << rpc;
  }
  for (auto& [rpc, call] : ModelCalls(std::string(64, 'b'))) {
    EXPECT_TRUE(HasStatus(call(), StatusCode::NOT_FOUND,
                          "model '" + std::string(64, 'b') + "' not found"))
        << rpc;
  }
  ExpectModelUnchanged();
}

TEST_F(LongNamesTest, AMegabyteNameIsResourceExhaustedWithAShortMessageWhereverNamesGo) {
  const std::string name(kMegabyte, 'n');
  const std::string shown = "'" + std::string(64, 'n') + "...' (1048576 bytes): longer than the "
                            "limit of 256 bytes";
  v1::Backflow::Stub& s = *stub_;
  const std::string id = info_.id();
  std::vector<NamedCall> calls = {
      {"name", [&] { v1::CreateModelRequest r = ModelRequest(TinyMlpGraph()); r.set_name(name);
                     v1::ModelInfo a; return s.CreateModel(Context().get(), r, &a); }},
      {"metric", [&] { v1::CreateModelRequest r = ModelRequest(TinyMlpGraph());
                       r.add_metrics(name); v1::ModelInfo a;
                       return s.CreateModel(Context().get(), r, &a); }},
      {"initial parameter", [&] { v1::CreateModelRequest r = ModelRequest(TinyMlpGraph());
                                  TensorToProto(TinyBatch(1).labels,
                                                &(*r.mutable_initial_parameters())[name]);
                                  v1::ModelInfo a; return s.CreateModel(Context().get(), r, &a); }},
      {"batch", [&] { v1::TrainStepRequest r; r.set_model_id(id);
                      TinyBatch(1).ToWire(r.mutable_batch());
                      TensorToProto(TinyBatch(1).labels, &(*r.mutable_batch())[name]);
                      v1::TrainStepResponse a; return s.TrainStep(Context().get(), r, &a); }},
      {"input", [&] { v1::InferRequest r; r.set_model_id(id);
                      TensorToProto(TinyBatch(1).x, &(*r.mutable_inputs())[name]);
                      v1::InferResponse a; return s.Infer(Context().get(), r, &a); }},
      {"output", [&] { v1::InferRequest r; r.set_model_id(id);
                       TensorToProto(TinyBatch(1).x, &(*r.mutable_inputs())["x"]);
                       r.add_outputs(name); v1::InferResponse a;
                       return s.Infer(Context().get(), r, &a); }},
      {"parameter", [&] { v1::GetParametersRequest r; r.set_model_id(id); r.add_names(name);
                          v1::GetParametersResponse a;
                          return s.GetParameters(Context().get(), r, &a); }},
      {"parameter", [&] { v1::SetParametersRequest r; r.set_model_id(id);
                          TensorToProto(TinyBatch(1).labels, &(*r.mutable_parameters())[name]);
                          v1::SetParametersResponse a;
                          return s.SetParameters(Context().get(), r, &a); }},
      {"target", [&] { v1::EvaluateRequest r; *r.mutable_graph() = TinyMlpGraph();
                       r.set_target(name); v1::EvaluateResponse a;
                       return s.Evaluate(Context().get(), r, &a); }},
      {"wrt", [&] { v1::EvaluateRequest r; *r.mutable_graph() = TinyMlpGraph(); r.add_wrt(name);
                    v1::EvaluateResponse a; return s.Evaluate(Context().get(), r, &a); }},
      {"output", [&] { v1::EvaluateRequest r; *r.mutable_graph() = TinyMlpGraph();
                       r.add_outputs(name); v1::EvaluateResponse a;
                       return s.Evaluate(Context().get(), r, &a); }},
      {"wrt", [&] { v1::CheckGradientsRequest r; r.set_model_id(id); r.add_wrt(name);
                    v1::CheckGradientsResponse a;
                    return s.CheckGradients(Context().get(), r, &a); }},
  };
  for (auto& [what, call] : calls) {
    const grpc::Status status = call();
    EXPECT_EQ(status.error_code(), StatusCode::RESOURCE_EXHAUSTED) << what;
    EXPECT_EQ(status.error_message(), what + " " + shown) << what;
  }
  ExpectModelUnchanged();
  v1::ListModelsResponse listed;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &listed)));
  EXPECT_EQ(listed.models_size(), 1);  // no CreateModel above made one
}

// The server's log, captured: spdlog's default logger writes to a string stream meanwhile.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_pattern("%v");
    logger->set_level(spdlog::level::warn);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(LongNamesTest, IdsWithNewlinesAndNulsCannotForgeLogLines) {
  CapturedLog log;
  const std::string forged("m-1\nreq 99 GetModel: OK\0tail", 28);
  v1::GetModelRequest request;
  request.set_model_id(forged);
  v1::ModelInfo answer;
  const grpc::Status status = stub_->GetModel(Context().get(), request, &answer);
  EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND);
  // The status quotes it escaped as well.
  EXPECT_EQ(status.error_message(), "model 'm-1\\nreq 99 GetModel: OK\\x00tail' not found");
  const std::string text = log.text();
  // One line, ending in the one newline; no NUL anywhere.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_EQ(text.find('\0'), std::string::npos);
  // The message is escaped once more as a whole, its quotes included.
  EXPECT_NE(
      text.find("req 2 GetModel model=m-1\\nreq 99 GetModel: OK\\x00tail peer=ipv4:127.0.0.1:"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(": NOT_FOUND: model \\'m-1\\\\nreq 99 GetModel: OK\\\\x00tail\\' not found in "),
      std::string::npos)
      << text;
}

TEST_F(LongNamesTest, AStreamsLineNamesTheModelItsFirstRequestNamed) {
  const auto stream_to = [this](const std::vector<std::string>& ids) {
    auto context = Context();
    auto stream = stub_->Train(context.get());
    for (const std::string& id : ids) {
      v1::TrainStepRequest request;
      request.set_model_id(id);
      TinyBatch(1).ToWire(request.mutable_batch());
      stream->Write(request);
    }
    stream->WritesDone();
    v1::TrainStepResponse response;
    while (stream->Read(&response)) {
    }
    return stream->Finish();
  };
  CapturedLog log;
  // A model that is not there, and a second request naming another model than the first.
  EXPECT_EQ(stream_to({"m-000000000000"}).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(stream_to({info_.id(), "m-000000000001"}).error_code(), StatusCode::INVALID_ARGUMENT);
  const std::string text = log.text();
  EXPECT_NE(text.find(" Train model=m-000000000000 peer=ipv4:127.0.0.1:"), std::string::npos)
      << text;
  EXPECT_NE(text.find(" Train model=" + info_.id() + " peer=ipv4:127.0.0.1:"), std::string::npos)
      << text;
}

TEST_F(LongNamesTest, RepeatedErrorsAreLoggedOnceASecondWithACount) {
  CapturedLog log;
  v1::GetParametersRequest request;
  request.set_model_id("m-000000000000");
  v1::GetParametersResponse answer;
  const auto start = std::chrono::steady_clock::now();
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(stub_->GetParameters(Context().get(), request, &answer).error_code(),
              StatusCode::NOT_FOUND);
  }
  // Within a second of the first: one line for all of them (a slow machine may be past it).
  const bool within_a_second = std::chrono::steady_clock::now() - start < std::chrono::seconds(1);
  const std::string first = log.text();
  if (within_a_second) {
    EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 1) << first;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(stub_->GetParameters(Context().get(), request, &answer).error_code(),
            StatusCode::NOT_FOUND);
  const std::string text = log.text();
  const std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  EXPECT_NE(last.find("GetParameters model=m-000000000000 peer=ipv4:127.0.0.1:"), std::string::npos)
      << text;
  if (within_a_second) {
    EXPECT_NE(last.find("(and " + std::to_string(kCalls - 1) +
                        " more GetParameters NOT_FOUND answers since the last such line)"),
              std::string::npos)
        << text;
  }
}

TEST_F(LongNamesTest, AnUndecodableRequestIsInvalidArgumentWithAMessage) {
  CapturedLog log;
  grpc::GenericStub generic(channel_);
  const char garbage[] = "\xff\xff\xff\xff";  // field 0x1fffffff... with wire type 7: no message
  grpc::Slice slice(garbage, 4);
  const grpc::ByteBuffer request(&slice, 1);
  for (const std::string rpc : {"GetModel", "TrainStep"}) {
    std::unique_ptr<grpc::ClientContext> context = Context();
    grpc::ByteBuffer response;
    std::mutex mu;
    std::condition_variable done_cv;
    bool done = false;
    grpc::Status status;
    generic.UnaryCall(context.get(), "/backflow.v1.Backflow/" + rpc, grpc::StubOptions(), &request,
                      &response, [&](grpc::Status s) {
                        std::lock_guard<std::mutex> lock(mu);
                        status = std::move(s);
                        done = true;
                        done_cv.notify_one();
                      });
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(done_cv.wait_for(lock, std::chrono::seconds(30), [&] { return done; }));
    EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << rpc;
    EXPECT_EQ(status.error_message(), "the request is not a valid backflow.v1." + rpc +
                                          "Request (" + rpc + "): its bytes could not be decoded");
  }
  // Two within a second: at most one log line (Note [Undecodable requests]).
  const std::string text = log.text();
  size_t lines = 0;
  for (size_t at = text.find("could not be decoded"); at != std::string::npos;
       at = text.find("could not be decoded", at + 1)) {
    ++lines;
  }
  EXPECT_LE(lines, 1u) << text;
  ExpectModelUnchanged();
}

}  // namespace
}  // namespace backflow::testing
