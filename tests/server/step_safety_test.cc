// A TrainStep (or a request of a Train stream) that fails changes nothing: an update that would
// make a parameter non-finite, an answer too large to send, a stale if_step. Each case asserts the
// exact status and that the model's step and parameters are bitwise as they were.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using Stream = grpc::ClientReaderWriter<v1::TrainStepRequest, v1::TrainStepResponse>;

// LeNet-5's 61,706 float32 parameters are 246,824 bytes: over this limit as one answer, while
// every request and every single parameter fits.
constexpr int64_t kMaxMessageBytes = 200000;

class StepSafetyTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.limits.max_message_bytes = kMaxMessageBytes;
  }

  std::string CreateLenet() {
    return CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05, 0.9), 3))
        .id();
  }

  // Step and every parameter's bytes, one GetParameters each (all at once is over the limit).
  std::pair<int64_t, std::map<std::string, std::string>> State(const std::string& id) {
    const int64_t step = GetModelInfo(*stub_, id).step();
    std::map<std::string, std::string> bytes;
    for (const char* name : {"c1_w", "c1_b", "c3_w", "c3_b", "f5_w", "f5_b", "f6_w", "f6_b",
                             "f7_w", "f7_b"}) {
      const v1::GetParametersResponse r = GetParameters(*stub_, id, {name});
      EXPECT_EQ(r.step(), step);
      bytes[name] = r.parameters().at(name).data();
    }
    return {step, bytes};
  }

  grpc::Status Step(const v1::TrainStepRequest& request, v1::TrainStepResponse* response) {
    return stub_->TrainStep(Context().get(), request, response);
  }

  v1::TrainStepRequest Request(const std::string& id) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    *request.mutable_batch() = ImageBatch(4, 5);
    return request;
  }
};

TEST_F(StepSafetyTest, AnUpdateThatWouldOverflowIsRefusedAndChangesNothing) {
  const std::string id = CreateLenet();
  TrainStep(*stub_, id, ImageBatch(4, 5));
  const auto before = State(id);
  v1::TrainStepRequest request = Request(id);
  request.set_learning_rate(1e300);  // float32 rounds it to infinity
  v1::TrainStepResponse response;
  const grpc::Status status = Step(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "step 2: update would make parameter 'c1_b' non-finite; not applied");
  EXPECT_EQ(State(id), before);
  EXPECT_EQ(TrainStep(*stub_, id, ImageBatch(4, 5)).step(), 2);
}

TEST_F(StepSafetyTest, SettingsAndInitialValuesThatOverflowFloat32AreRefused) {
  auto create = [&](const v1::CreateModelRequest& request) {
    v1::ModelInfo info;
    return stub_->CreateModel(Context().get(), request, &info);
  };
  const grpc::Status lr = create(ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(1e300)));
  EXPECT_EQ(lr.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(lr.error_message(),
            "optimizer config: learning_rate must be representable in float32, got 1e+300");
  v1::OptimizerSpec decay = SgdSpec(0.1);
  decay.set_weight_decay(1e300);
  const grpc::Status wd = create(ModelRequest(ModelGraph("lenet5.pbtxt"), decay));
  EXPECT_EQ(wd.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wd.error_message(),
            "optimizer config: weight_decay must be representable in float32, got 1e+300");
  v1::Graph graph = ModelGraph("lenet5.pbtxt");
  for (v1::Parameter& p : *graph.mutable_parameters()) {
    if (p.name() == "f7_b") p.mutable_init()->mutable_constant()->set_value(1e300);
  }
  const grpc::Status init = create(ModelRequest(graph));
  EXPECT_EQ(init.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(HasStatus(init, grpc::StatusCode::INVALID_ARGUMENT,
                        "parameter 'f7_b': initial value at element 0 is not finite in float32"));
  // The same in float64 fits, and nothing was registered by the refusals.
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &list)));
  EXPECT_EQ(list.models_size(), 0);
  EXPECT_TRUE(IsOk(create(ModelRequest(graph, {}, 1, v1::FLOAT64))));
}

TEST_F(StepSafetyTest, AnAnswerOverTheMessageLimitIsRefusedBeforeTheStep) {
  const std::string id = CreateLenet();
  const auto before = State(id);
  v1::TrainStepRequest request = Request(id);
  request.set_return_parameters(true);
  v1::TrainStepResponse response;
  const grpc::Status status = Step(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(HasStatus(status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "over the server's --max-message-bytes of 200000; the step was not "
                        "applied"));
  EXPECT_EQ(State(id), before);

  // A Train stream: the stream ends with the status, the step not applied.
  std::unique_ptr<grpc::ClientContext> context = Context();
  std::unique_ptr<Stream> stream = stub_->Train(context.get());
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  int answers = 0;
  while (answers < 2 && stream->Read(&response)) ++answers;
  const grpc::Status stream_status = stream->Finish();
  EXPECT_EQ(answers, 0);
  EXPECT_TRUE(HasStatus(stream_status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "request 0: the answer would be "));
  EXPECT_EQ(State(id), before);

  // Without the parameters the answer is small, and the step goes through.
  request.set_return_parameters(false);
  ASSERT_TRUE(IsOk(Step(request, &response)));
  EXPECT_EQ(response.step(), 1);
}

TEST_F(StepSafetyTest, IfStepAppliesAStepAtMostOnce) {
  const std::string id = CreateLenet();
  v1::TrainStepRequest request = Request(id);
  request.set_if_step(0);
  v1::TrainStepResponse response;
  ASSERT_TRUE(IsOk(Step(request, &response)));
  EXPECT_EQ(response.step(), 1);
  const auto after = State(id);
  // The retry of a call whose answer was lost.
  const grpc::Status retry = Step(request, &response);
  EXPECT_EQ(retry.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(retry.error_message(), "parameters are at step 1, not 0");
  EXPECT_EQ(State(id), after);

  // In a stream: each request's if_step; a stale one ends the stream, applying nothing more.
  std::unique_ptr<grpc::ClientContext> context = Context();
  std::unique_ptr<Stream> stream = stub_->Train(context.get());
  for (int64_t expected : {1, 2, 2}) {
    request.set_if_step(expected);
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  std::vector<int64_t> steps;
  while (steps.size() < 4 && stream->Read(&response)) steps.push_back(response.step());
  const grpc::Status stream_status = stream->Finish();
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(stream_status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(stream_status.error_message(), "request 2: parameters are at step 3, not 2");
  EXPECT_EQ(GetModelInfo(*stub_, id).step(), 3);
}

}  // namespace
}  // namespace backflow::testing
