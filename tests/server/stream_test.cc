// The Train stream: pipelined steps in order and bitwise equal to the engine, back-pressure with
// a small read-ahead window, the first failing step ending the stream, the stream limits, and
// idle streams timing out (--stream-idle-timeout).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using Stream = grpc::ClientReaderWriter<v1::TrainStepRequest, v1::TrainStepResponse>;

// Request k (from 0) of a run: TinyBatch(k + 1). The model id goes in the first request and,
// to show that repeating it is allowed, in every 100th after.
std::vector<v1::TrainStepRequest> Requests(const std::string& model_id, int n, int64_t rows) {
  std::vector<v1::TrainStepRequest> requests(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) {
    v1::TrainStepRequest& r = requests[static_cast<size_t>(k)];
    if (k % 100 == 0) r.set_model_id(model_id);
    TinyBatch(static_cast<uint64_t>(k) + 1, rows).ToWire(r.mutable_batch());
  }
  return requests;
}

struct StreamResult {
  std::vector<v1::TrainStepResponse> responses;
  grpc::Status status;
};

// Runs one Train stream: a writer thread sends every request (stopping when the stream ends)
// while this thread reads every response, as a pipelining client does.
StreamResult RunStream(v1::Backflow::Stub& stub, const std::vector<v1::TrainStepRequest>& requests,
                       std::chrono::seconds timeout = std::chrono::seconds(120)) {
  std::unique_ptr<grpc::ClientContext> context = Context(timeout);
  std::unique_ptr<Stream> stream = stub.Train(context.get());
  std::thread writer([&] {
    for (const v1::TrainStepRequest& request : requests) {
      if (!stream->Write(request)) return;  // the server ended the stream
    }
    stream->WritesDone();
  });
  StreamResult result;
  v1::TrainStepResponse response;
  // One response per request; never more, so the count bounds the loop.
  while (result.responses.size() <= requests.size() && stream->Read(&response)) {
    result.responses.push_back(response);
  }
  writer.join();
  result.status = stream->Finish();
  return result;
}

// The same steps on the engine directly: losses in order, then the final parameters.
struct Replay {
  std::vector<double> losses;
  ParameterMap parameters;
};
Replay ReplayOnEngine(const v1::CreateModelRequest& request, int n, int64_t rows) {
  Replay replay;
  std::unique_ptr<Trainer> direct = DirectTrainer(request);
  if (direct == nullptr) return replay;
  for (int k = 0; k < n; ++k) {
    const TinyBatch batch(static_cast<uint64_t>(k) + 1, rows);
    StatusOr<StepResult> step = direct->Step(batch.feeds());
    EXPECT_TRUE(step.ok()) << step.status().ToString();
    if (!step.ok()) break;
    replay.losses.push_back(step->loss);
  }
  replay.parameters = direct->parameters()->values;
  return replay;
}

void ExpectInOrderAndEqualToTheEngine(v1::Backflow::Stub& stub, const std::string& id,
                                      const StreamResult& run, const Replay& replay) {
  ASSERT_EQ(run.responses.size(), replay.losses.size());
  int mismatched = 0;
  for (size_t k = 0; k < run.responses.size(); ++k) {
    if (run.responses[k].step() != static_cast<int64_t>(k) + 1 ||
        run.responses[k].loss() != replay.losses[k]) {
      if (++mismatched <= 5) {
        ADD_FAILURE() << "response " << k << ": step " << run.responses[k].step() << " loss "
                      << run.responses[k].loss() << ", expected step " << k + 1 << " loss "
                      << replay.losses[k];
      }
    }
  }
  EXPECT_EQ(mismatched, 0);
  const v1::GetParametersResponse final_parameters = GetParameters(stub, id);
  EXPECT_EQ(final_parameters.step(), static_cast<int64_t>(replay.losses.size()));
  ExpectBitwiseEqual(final_parameters.parameters(), replay.parameters);
}

using StreamTest = ServerTest;

TEST_F(StreamTest, ThousandPipelinedStepsArriveInOrderAndEqualTheEngine) {
  constexpr int kSteps = 1000;
  const v1::CreateModelRequest request = ModelRequest(TinyMlpGraph(), SgdSpec(0.05, 0.9), 3);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  const StreamResult run = RunStream(*stub_, Requests(info.id(), kSteps, 4));
  ASSERT_TRUE(IsOk(run.status));
  ExpectInOrderAndEqualToTheEngine(*stub_, info.id(), run, ReplayOnEngine(request, kSteps, 4));
}

// A read-ahead window of 2 and batches large enough (9 KiB each, 2.7 MB in all) that HTTP/2
// flow control has to hold the writer back: the run still completes, in order.
class NarrowWindowStreamTest : public StreamTest {
 protected:
  void Configure(server::ServerConfig& config) override { config.limits.stream_window = 2; }
};

TEST_F(NarrowWindowStreamTest, BackPressureKeepsOrder) {
  constexpr int kSteps = 300;
  constexpr int64_t kRows = 256;
  const v1::CreateModelRequest request = ModelRequest(TinyMlpGraph(), SgdSpec(0.05, 0.9), 4);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  const StreamResult run = RunStream(*stub_, Requests(info.id(), kSteps, kRows));
  ASSERT_TRUE(IsOk(run.status));
  ExpectInOrderAndEqualToTheEngine(*stub_, info.id(), run, ReplayOnEngine(request, kSteps, kRows));
}

TEST_F(StreamTest, AFailingStepEndsTheStreamAfterTheStepsBeforeIt) {
  const v1::CreateModelRequest request = ModelRequest(TinyMlpGraph(), SgdSpec(0.05, 0.9), 5);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  std::vector<v1::TrainStepRequest> requests = Requests(info.id(), 10, 4);
  // Request 5: a NaN in x. Requests 6..9 are valid, and may already be read ahead.
  std::string& x = *(*requests[5].mutable_batch())["x"].mutable_data();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(x.data() + 3 * sizeof(float), &nan, sizeof(float));

  const StreamResult run = RunStream(*stub_, requests);
  EXPECT_EQ(run.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << run.status.error_message();
  EXPECT_EQ(run.status.error_message().rfind("request 5: ", 0), 0u) << run.status.error_message();
  EXPECT_NE(run.status.error_message().find("'x'"), std::string::npos)
      << run.status.error_message();
  ASSERT_EQ(run.responses.size(), 5u);
  for (size_t k = 0; k < 5; ++k) EXPECT_EQ(run.responses[k].step(), static_cast<int64_t>(k) + 1);
  EXPECT_EQ(GetModelInfo(*stub_, info.id()).step(), 5);
  // Nothing after the failure applied: the parameters are those of five steps.
  const Replay replay = ReplayOnEngine(request, 5, 4);
  ExpectBitwiseEqual(GetParameters(*stub_, info.id()).parameters(), replay.parameters);
}

TEST_F(StreamTest, TheFirstRequestMustNameTheModel) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  std::vector<v1::TrainStepRequest> requests = Requests(info.id(), 3, 4);
  requests[0].clear_model_id();
  const StreamResult run = RunStream(*stub_, requests);
  EXPECT_EQ(run.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << run.status.error_message();
  EXPECT_TRUE(run.responses.empty());
  EXPECT_EQ(GetModelInfo(*stub_, info.id()).step(), 0);
}

TEST_F(StreamTest, ALaterRequestMayNotNameAnotherModel) {
  const v1::ModelInfo a = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  const v1::ModelInfo b = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  std::vector<v1::TrainStepRequest> requests = Requests(a.id(), 3, 4);
  requests[1].set_model_id(b.id());
  const StreamResult run = RunStream(*stub_, requests);
  EXPECT_EQ(run.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << run.status.error_message();
  EXPECT_EQ(run.status.error_message().rfind("request 1: ", 0), 0u) << run.status.error_message();
  // Request 0 was valid and came first: it is answered (and applied) before the stream ends.
  EXPECT_EQ(run.responses.size(), 1u);
  if (!run.responses.empty()) {
    EXPECT_EQ(run.responses[0].step(), 1);
  }
  EXPECT_EQ(GetModelInfo(*stub_, a.id()).step(), 1);
  EXPECT_EQ(GetModelInfo(*stub_, b.id()).step(), 0);
}

// A model deleted while its stream is open: the steps read after the delete fail NOT_FOUND.
TEST_F(StreamTest, DeletingTheModelEndsItsOpenStream) {
  const v1::ModelInfo model = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  std::vector<v1::TrainStepRequest> requests = Requests(model.id(), 4, 4);
  auto context = Context();
  auto stream = stub_->Train(context.get());
  v1::TrainStepResponse response;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(stream->Write(requests[static_cast<size_t>(i)]));
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.step(), i + 1);
  }
  v1::DeleteModelRequest del;
  del.set_model_id(model.id());
  v1::DeleteModelResponse deleted;
  ASSERT_TRUE(stub_->DeleteModel(Context().get(), del, &deleted).ok());
  stream->Write(requests[2]);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_EQ(status.error_message(), "request 2: model '" + model.id() + "' was deleted");
}

TEST_F(StreamTest, AnUnknownModelEndsTheStreamWithNotFound) {
  std::vector<v1::TrainStepRequest> requests = Requests("no-such-model", 2, 4);
  const StreamResult run = RunStream(*stub_, requests);
  EXPECT_TRUE(HasStatus(run.status, grpc::StatusCode::NOT_FOUND, "no-such-model"));
  EXPECT_TRUE(run.responses.empty());
}

class OneStreamTest : public StreamTest {
 protected:
  void Configure(server::ServerConfig& config) override { config.limits.max_streams = 1; }
};

TEST_F(OneStreamTest, ASecondOpenStreamIsRefused) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  const std::vector<v1::TrainStepRequest> requests = Requests(info.id(), 2, 4);
  std::unique_ptr<grpc::ClientContext> first_context = Context();
  std::unique_ptr<Stream> first = stub_->Train(first_context.get());
  ASSERT_TRUE(first->Write(requests[0]));
  v1::TrainStepResponse response;
  ASSERT_TRUE(first->Read(&response));  // the first stream is open and serving
  EXPECT_EQ(response.step(), 1);

  const StreamResult second = RunStream(*stub_, requests);
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << second.status.error_message();
  EXPECT_TRUE(second.responses.empty());

  // The first stream is unaffected.
  ASSERT_TRUE(first->Write(requests[1]));
  ASSERT_TRUE(first->Read(&response));
  EXPECT_EQ(response.step(), 2);
  ASSERT_TRUE(first->WritesDone());
  EXPECT_FALSE(first->Read(&response));
  ASSERT_TRUE(IsOk(first->Finish()));

  // Its slot is free again once it has closed (the server may release it a moment after the
  // client sees the status, so retry for up to two seconds).
  StreamResult third;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (int attempt = 0; attempt < 100; ++attempt) {
    third = RunStream(*stub_, {requests[0]});
    if (third.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
        std::chrono::steady_clock::now() > give_up) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(IsOk(third.status));
  ASSERT_EQ(third.responses.size(), 1u);
  EXPECT_EQ(third.responses[0].step(), 3);
}

// Note [Idle streams]: 8 slots, a 2-second idle timeout.
class IdleStreamTest : public StreamTest {
 protected:
  static constexpr int kSlots = 8;
  void Configure(server::ServerConfig& config) override {
    config.limits.max_streams = kSlots;
    config.stream_idle_timeout = std::chrono::seconds(2);
  }
};

TEST_F(IdleStreamTest, IdleStreamsTimeOutAndGiveTheirSlotsBack) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  const std::vector<v1::TrainStepRequest> requests = Requests(info.id(), 2, 4);
  // Every slot held by a stream that trains one step and then sends nothing.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<Stream>> idle;
  for (int k = 0; k < kSlots; ++k) {
    contexts.push_back(Context(std::chrono::seconds(30)));
    idle.push_back(stub_->Train(contexts.back().get()));
    ASSERT_TRUE(idle.back()->Write(requests[0]));
    v1::TrainStepResponse response;
    ASSERT_TRUE(idle.back()->Read(&response));
    EXPECT_EQ(response.step(), k + 1);
  }
  const auto idle_since = std::chrono::steady_clock::now();
  const StreamResult refused = RunStream(*stub_, requests);
  EXPECT_TRUE(HasStatus(refused.status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "more than 8 Train streams open (--max-streams)"));
  EXPECT_TRUE(refused.responses.empty());

  // Each idle stream is ended by the server: DEADLINE_EXCEEDED as its next request (1).
  for (std::unique_ptr<Stream>& stream : idle) {
    v1::TrainStepResponse response;
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_TRUE(HasStatus(stream->Finish(), grpc::StatusCode::DEADLINE_EXCEEDED,
                          "request 1: the stream was idle for 2 s (--stream-idle-timeout)"));
  }
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - idle_since).count();
  EXPECT_GE(waited, 1.9);
  EXPECT_LT(waited, 10.0);

  // The slots are free again (released a moment after the client sees the status: retry for
  // up to two seconds) and training resumes where the idle streams left it.
  StreamResult resumed;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (int attempt = 0; attempt < 100; ++attempt) {
    resumed = RunStream(*stub_, requests);
    if (resumed.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
        std::chrono::steady_clock::now() > give_up) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(IsOk(resumed.status));
  ASSERT_EQ(resumed.responses.size(), 2u);
  EXPECT_EQ(resumed.responses[0].step(), kSlots + 1);
  EXPECT_EQ(resumed.responses[1].step(), kSlots + 2);
}

TEST_F(IdleStreamTest, AStreamThatNeverSendsEndsAfterTheTimeout) {
  std::unique_ptr<grpc::ClientContext> context = Context(std::chrono::seconds(30));
  const auto opened = std::chrono::steady_clock::now();
  std::unique_ptr<Stream> stream = stub_->Train(context.get());
  v1::TrainStepResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(HasStatus(stream->Finish(), grpc::StatusCode::DEADLINE_EXCEEDED,
                        "request 0: the stream was idle for 2 s (--stream-idle-timeout)"));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - opened).count();
  EXPECT_GE(waited, 1.9);
  EXPECT_LT(waited, 10.0);
}

TEST_F(IdleStreamTest, AStreamThatKeepsSendingOutlivesTheTimeout) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  const std::vector<v1::TrainStepRequest> requests = Requests(info.id(), 6, 4);
  std::unique_ptr<grpc::ClientContext> context = Context(std::chrono::seconds(30));
  std::unique_ptr<Stream> stream = stub_->Train(context.get());
  // A step every 0.7 s for 4.2 s: more than twice the timeout in all, never idle for it.
  for (size_t k = 0; k < requests.size(); ++k) {
    ASSERT_TRUE(stream->Write(requests[k]));
    v1::TrainStepResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.step(), static_cast<int64_t>(k) + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
  }
  ASSERT_TRUE(stream->WritesDone());
  v1::TrainStepResponse extra;
  EXPECT_FALSE(stream->Read(&extra));
  EXPECT_TRUE(IsOk(stream->Finish()));
}

}  // namespace
}  // namespace backflow::testing
