// Bad input over the wire: every case gets its exact status code and a message naming the
// culprit (node, tensor, field or id), and none of them may change what the server holds: after
// the whole table the server is healthy, a model trained before it is bitwise where it was, and
// training goes on. Also: the model limit, and calls cancelled or past their deadline.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using grpc::StatusCode;

// x: a batch of 3-vectors; w: a 3-vector parameter. The graph cases build on these.
constexpr char kBase[] =
    R"(name: "g" placeholders { name: "x" shape: [-1, 3] } parameters { name: "w" shape: [3] })";

v1::Graph GraphText(const std::string& text) {
  StatusOr<v1::Graph> graph = ParseGraphText(text);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString() << "\n" << text;
  return graph.ok() ? *graph : v1::Graph();
}

// A chain of n add nodes on kBase.
v1::Graph Chain(int n) {
  std::string text = kBase;
  std::string previous = "x";
  for (int i = 0; i < n; ++i) {
    const std::string name = "a" + std::to_string(i);
    text += " nodes { name: '" + name + "' op: 'add' inputs: ['" + previous + "', 'w'] }";
    previous = name;
  }
  return GraphText(text);
}

// Calls that return only their status, for the table.
class Calls {
 public:
  explicit Calls(v1::Backflow::Stub& stub) : stub_(stub) {}

  grpc::Status Create(v1::CreateModelRequest request) const {
    v1::ModelInfo info;
    return stub_.CreateModel(Context().get(), request, &info);
  }
  grpc::Status Create(const v1::Graph& graph, v1::OptimizerSpec optimizer = {}) const {
    return Create(ModelRequest(graph, optimizer));
  }
  grpc::Status Get(const std::string& id) const {
    v1::GetModelRequest request;
    request.set_model_id(id);
    v1::ModelInfo info;
    return stub_.GetModel(Context().get(), request, &info);
  }
  grpc::Status Delete(const std::string& id) const {
    v1::DeleteModelRequest request;
    request.set_model_id(id);
    v1::DeleteModelResponse response;
    return stub_.DeleteModel(Context().get(), request, &response);
  }
  grpc::Status Train(const std::string& id, const WireTensorMap& batch) const {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    *request.mutable_batch() = batch;
    v1::TrainStepResponse response;
    return stub_.TrainStep(Context().get(), request, &response);
  }
  grpc::Status Gradients(const std::string& id, const WireTensorMap& batch) const {
    v1::ComputeGradientsRequest request;
    request.set_model_id(id);
    *request.mutable_batch() = batch;
    v1::ComputeGradientsResponse response;
    return stub_.ComputeGradients(Context().get(), request, &response);
  }
  grpc::Status Infer(const std::string& id, const WireTensorMap& inputs,
                     std::vector<std::string> outputs = {}) const {
    v1::InferRequest request;
    request.set_model_id(id);
    *request.mutable_inputs() = inputs;
    for (const std::string& name : outputs) request.add_outputs(name);
    v1::InferResponse response;
    return stub_.Infer(Context().get(), request, &response);
  }
  grpc::Status GetParams(const std::string& id, const std::string& name) const {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    request.add_names(name);
    v1::GetParametersResponse response;
    return stub_.GetParameters(Context().get(), request, &response);
  }
  grpc::Status SetParams(const std::string& id, const std::string& name, const v1::Tensor& value,
                         std::optional<int64_t> if_step = std::nullopt) const {
    v1::SetParametersRequest request;
    request.set_model_id(id);
    (*request.mutable_parameters())[name] = value;
    if (if_step) request.set_if_step(*if_step);
    v1::SetParametersResponse response;
    return stub_.SetParameters(Context().get(), request, &response);
  }
  grpc::Status Save(const std::string& id) const {
    v1::SaveCheckpointRequest request;
    request.set_model_id(id);
    v1::SaveCheckpointResponse response;
    return stub_.SaveCheckpoint(Context().get(), request, &response);
  }
  grpc::Status Restore(const std::string& id) const {
    v1::RestoreCheckpointRequest request;
    request.set_model_id(id);
    v1::RestoreCheckpointResponse response;
    return stub_.RestoreCheckpoint(Context().get(), request, &response);
  }
  grpc::Status Evaluate(const std::string& seed_file, const WireTensorMap& values) const {
    v1::EvaluateRequest request;
    *request.mutable_graph() = ModelGraph("seeds/" + seed_file + ".pbtxt");
    *request.mutable_values() = values;
    v1::EvaluateResponse response;
    return stub_.Evaluate(Context().get(), request, &response);
  }

 private:
  v1::Backflow::Stub& stub_;
};

// `batch` with one thing changed.
WireTensorMap Edit(WireTensorMap batch, const std::function<void(WireTensorMap&)>& edit) {
  edit(batch);
  return batch;
}

void PutFloat(v1::Tensor& t, size_t index, float value) {
  std::memcpy(t.mutable_data()->data() + index * sizeof(float), &value, sizeof(float));
}

// One bad request, already sent: what came back and what should have.
struct BadCase {
  std::string name;
  grpc::Status status;
  StatusCode code;
  std::string fragment;  // must appear in the message
};

class BadInputTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.limits.max_nodes = 32;
    config.limits.max_tensor_elements = 1 << 20;
    config.limits.max_message_bytes = 1 << 20;
  }

  // Sends every bad request, in table order, against the LeNet-5 model `lenet` (trained one
  // step) and `no_loss` (the same graph without its loss).
  std::vector<BadCase> RunCases(const std::string& lenet, const std::string& no_loss);
};

std::vector<BadCase> BadInputTest::RunCases(const std::string& lenet, const std::string& no_loss) {
  const Calls c(*stub_);
  const StatusCode kInvalid = StatusCode::INVALID_ARGUMENT;
  const StatusCode kExhausted = StatusCode::RESOURCE_EXHAUSTED;
  const StatusCode kNotFound = StatusCode::NOT_FOUND;
  const StatusCode kPrecondition = StatusCode::FAILED_PRECONDITION;
  auto graph = [](const std::string& rest) { return GraphText(kBase + rest); };
  const float inf = std::numeric_limits<float>::infinity();
  const v1::Tensor zeros10 = WireTensor({10}, std::vector<float>(10));
  const WireTensorMap batch = ImageBatch(4, 2);

  v1::CreateModelRequest dtype99 = ModelRequest(ModelGraph("lenet5.pbtxt"));
  dtype99.set_dtype(static_cast<v1::DataType>(99));
  v1::CreateModelRequest int_model = ModelRequest(ModelGraph("lenet5.pbtxt"));
  int_model.set_dtype(v1::INT64);
  v1::Tensor int_images = WireTensor({4, 1, 28, 28}, std::vector<float>(4 * 784 * 2));
  int_images.set_dtype(v1::INT64);  // the same 8 bytes per element as 2 float32 zeros
  v1::CreateModelRequest inf_initial = ModelRequest(ModelGraph("lenet5.pbtxt"));
  PutFloat((*inf_initial.mutable_initial_parameters())["f7_b"] = zeros10, 4, inf);
  v1::CreateModelRequest unknown_metric = ModelRequest(ModelGraph("lenet5.pbtxt"));
  unknown_metric.add_metrics("precision");
  v1::Tensor inf_f7_b = zeros10;
  PutFloat(inf_f7_b, 9, inf);
  WireTensorMap add_mul_without_z;
  add_mul_without_z["x"] = WireTensor64({}, {-2});
  add_mul_without_z["y"] = WireTensor64({}, {5});
  WireTensorMap add_mul_nan_x = add_mul_without_z;
  add_mul_nan_x["x"] = WireTensor64({}, {std::nan("")});
  add_mul_nan_x["z"] = WireTensor64({}, {-4});
  // 2 MiB of images: past the 1 MiB message limit, within the element limit.
  const WireTensorMap too_big = ImageBatch(669, 3);

  return {
      // Graphs: the importer's message, naming the node.
      {"UnknownOp", c.Create(graph("nodes { name: 'h' op: 'matmulz' inputs: ['x', 'w'] }")),
       kInvalid, "node 'h': unknown op 'matmulz'"},
      {"UndefinedInput", c.Create(graph("nodes { name: 'h' op: 'add' inputs: ['x2', 'w'] }")),
       kInvalid, "node 'h': input 'x2' is not defined"},
      {"Cycle",
       c.Create(graph("nodes { name: 'a' op: 'add' inputs: ['x', 'b'] } "
                      "nodes { name: 'b' op: 'add' inputs: ['a', 'w'] }")),
       kInvalid, "node 'a': is on a cycle: a -> b -> a"},
      {"DuplicateNodeName",
       c.Create(graph("nodes { name: 'h' op: 'add' inputs: ['x', 'w'] } "
                      "nodes { name: 'h' op: 'mul' inputs: ['x', 'w'] }")),
       kInvalid, "node 'h': duplicate name"},
      {"NonScalarLoss",
       c.Create(graph("nodes { name: 'h' op: 'add' inputs: ['x', 'w'] } loss: 'h'")), kInvalid,
       "loss 'h': has shape [N, 3]"},
      {"MatMulShapeMismatch",
       c.Create(graph("parameters { name: 'm' shape: [4, 5] } "
                      "nodes { name: 'mm' op: 'matmul' inputs: ['x', 'm'] }")),
       kInvalid, "node 'mm': inner dimensions differ"},
      {"AttributeOfWrongType",
       c.Create(graph("nodes { name: 'flat' op: 'flatten' inputs: 'x' "
                      "        attrs { key: 'axis' value { f: 1.5 } } }")),
       kInvalid, "node 'flat' (flatten): attribute 'axis' must be int"},
      {"TooManyNodes", c.Create(Chain(33)), kExhausted, "33 nodes, more than the limit of 32"},
      {"ParameterTooLarge", c.Create(graph("parameters { name: 'big' shape: [1100, 1000] }")),
       kExhausted, "parameter 'big'"},
      {"MessageTooLarge", c.Train(lenet, too_big), kExhausted, "larger than max"},
      // Model settings.
      {"DtypeOutOfEnum", c.Create(dtype99), kInvalid, "99"},
      {"IntegerModelDtype", c.Create(int_model), kInvalid, "int64 is not a compute dtype"},
      {"NegativeLearningRate", c.Create(ModelGraph("lenet5.pbtxt"), SgdSpec(-1)), kInvalid,
       "learning_rate"},
      {"MomentumOfOne", c.Create(ModelGraph("lenet5.pbtxt"), SgdSpec(0.1, 1.0)), kInvalid,
       "momentum"},
      {"InfInInitialParameters", c.Create(inf_initial), kInvalid, "'f7_b'"},
      {"UnknownMetric", c.Create(unknown_metric), kInvalid, "precision"},
      // Unknown ids.
      {"GetModelUnknownId", c.Get("no-such-model"), kNotFound, "no-such-model"},
      {"TrainStepUnknownId", c.Train("no-such-model", batch), kNotFound, "no-such-model"},
      {"InferUnknownId", c.Infer("no-such-model", batch), kNotFound, "no-such-model"},
      {"DeleteModelUnknownId", c.Delete("no-such-model"), kNotFound, "no-such-model"},
      {"ComputeGradientsUnknownId", c.Gradients("gone", batch), kNotFound, "gone"},
      {"SaveCheckpointUnknownId", c.Save("gone"), kNotFound, "gone"},
      // Batches: the tensor is named.
      {"MissingPlaceholder", c.Train(lenet, Edit(batch, [](auto& b) { b.erase("labels"); })),
       kInvalid, "'labels'"},
      {"WrongBatchShape",
       c.Train(lenet,
               Edit(batch,
                    [](auto& b) {
                      b["images"] = WireTensor({4, 1, 28, 27}, std::vector<float>(4 * 28 * 27));
                    })),
       kInvalid, "'images'"},
      {"Float64Batch",
       c.Train(lenet,
               Edit(batch,
                    [](auto& b) {
                      b["images"] = WireTensor64({4, 1, 28, 28}, std::vector<double>(4 * 784));
                    })),
       kInvalid, "'images'"},
      {"Int64Batch",
       c.Train(lenet, Edit(batch, [&](auto& b) { b["images"] = int_images; })), kInvalid,
       "'images': dtype int64, the model computes in float32"},
      {"TruncatedBytes",
       c.Train(lenet,
               Edit(batch, [](auto& b) { b["images"].mutable_data()->resize(4 * 784 * 4 - 4); })),
       kInvalid, "'images'"},
      {"NegativeDimension",
       c.Train(lenet, Edit(batch, [](auto& b) { b["images"].set_shape(0, -4); })), kInvalid,
       "'images'"},
      {"BatchDtypeOutOfEnum",
       c.Train(lenet,
               Edit(batch, [](auto& b) { b["labels"].set_dtype(static_cast<v1::DataType>(99)); })),
       kInvalid, "'labels'"},
      {"NaNInBatch",
       c.Train(lenet, Edit(batch, [](auto& b) { PutFloat(b["labels"], 2, std::nanf("")); })),
       kInvalid, "'labels'"},
      {"InfInInferInput",
       c.Infer(lenet, Edit(batch, [&](auto& b) { PutFloat(b["images"], 100, -inf); })), kInvalid,
       "'images'"},
      {"FeedingAParameter", c.Infer(lenet, Edit(batch, [&](auto& b) { b["f7_b"] = zeros10; })),
       kInvalid, "'f7_b'"},
      {"InferUnknownOutput", c.Infer(lenet, batch, {"logitz"}), kInvalid, "logitz"},
      // Parameters.
      {"InfInSetParameters", c.SetParams(lenet, "f7_b", inf_f7_b), kInvalid, "'f7_b'"},
      {"SetParametersUnknownName", c.SetParams(lenet, "f8_b", zeros10), kNotFound, "f8_b"},
      {"SetParametersWrongShape",
       c.SetParams(lenet, "f7_b", WireTensor({11}, std::vector<float>(11))), kInvalid, "f7_b"},
      {"SetParametersStaleIfStep", c.SetParams(lenet, "f7_b", zeros10, 0), kPrecondition, "step"},
      {"GetParametersUnknownName", c.GetParams(lenet, "f8_w"), kNotFound, "f8_w"},
      // Model state.
      {"TrainStepWithoutLoss", c.Train(no_loss, batch), kPrecondition, "loss"},
      {"ComputeGradientsWithoutLoss", c.Gradients(no_loss, batch), kPrecondition, "loss"},
      {"RestoreWithoutCheckpoint", c.Restore(lenet), kPrecondition, "checkpoint"},
      // Evaluate.
      {"EvaluateMissingValue", c.Evaluate("add_mul", add_mul_without_z), kInvalid, "'z'"},
      {"EvaluateNaNValue", c.Evaluate("add_mul", add_mul_nan_x), kInvalid, "'x'"},
  };
}

TEST_F(BadInputTest, EveryCaseFailsPreciselyAndChangesNothing) {
  const v1::ModelInfo lenet =
      CreateModel(*stub_, ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05, 0.9), 1));
  EXPECT_EQ(TrainStep(*stub_, lenet.id(), ImageBatch(4, 1)).step(), 1);
  v1::Graph no_loss_graph = ModelGraph("lenet5.pbtxt");
  no_loss_graph.clear_loss();
  const v1::ModelInfo no_loss = CreateModel(*stub_, ModelRequest(no_loss_graph));
  EXPECT_EQ(no_loss.loss(), "");
  const v1::GetParametersResponse before = GetParameters(*stub_, lenet.id());

  const std::vector<BadCase> cases = RunCases(lenet.id(), no_loss.id());
  EXPECT_GE(cases.size(), 25u);
  for (const BadCase& bad : cases) {
    EXPECT_TRUE(HasStatus(bad.status, bad.code, bad.fragment)) << bad.name;
  }

  // Nothing changed: the server is healthy, and holds exactly the two models, as they were.
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse serving;
  ASSERT_TRUE(IsOk(health->Check(Context().get(), {}, &serving)));
  EXPECT_EQ(serving.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), {}, &list)));
  EXPECT_EQ(list.models_size(), 2);
  const v1::GetParametersResponse after = GetParameters(*stub_, lenet.id());
  EXPECT_EQ(after.step(), 1);
  ExpectBitwiseEqual(after.parameters(), before.parameters());
  EXPECT_EQ(TrainStep(*stub_, lenet.id(), ImageBatch(4, 3)).step(), 2);
}

class ModelLimitTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override { config.limits.max_models = 2; }
};

TEST_F(ModelLimitTest, ATakenSlotIsRefusedUntilAModelIsDeleted) {
  Calls c(*stub_);
  const v1::ModelInfo first = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  EXPECT_TRUE(HasStatus(c.Create(TinyMlpGraph()), StatusCode::RESOURCE_EXHAUSTED, "2"));
  ASSERT_TRUE(IsOk(c.Delete(first.id())));
  EXPECT_TRUE(IsOk(c.Create(TinyMlpGraph())));
}

// Calls the client gives up on: CANCELLED and DEADLINE_EXCEEDED, and the step they were
// computing never lands. Steps on one model apply in arrival order, so the step number of the
// next valid step shows whether the abandoned one was applied, however late.
class AbandonedCallTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    request_ = ModelRequest(ModelGraph("lenet5.pbtxt"), SgdSpec(0.05), 2);
    id_ = CreateModel(*stub_, request_).id();
  }

  // A step heavy enough (LeNet-5 on a large batch) to be running when the client gives up.
  v1::TrainStepRequest HeavyStep(int batch_size) const {
    v1::TrainStepRequest request;
    request.set_model_id(id_);
    *request.mutable_batch() = ImageBatch(batch_size, 9);
    return request;
  }

  // The next step is step 1, computed on the initial parameters as the engine computes it.
  void ExpectNothingWasApplied() {
    const WireTensorMap batch = ImageBatch(4, 1);
    const v1::TrainStepResponse step = TrainStep(*stub_, id_, batch, false, true);
    EXPECT_EQ(step.step(), 1);
    std::unique_ptr<Trainer> direct = DirectTrainer(request_);
    ASSERT_NE(direct, nullptr);
    const auto tensors = EngineTensors(batch);
    ASSERT_TRUE(direct->Step(EngineFeeds(tensors)).ok());
    ExpectBitwiseEqual(step.parameters(), direct->parameters()->values);
  }

  v1::CreateModelRequest request_;
  std::string id_;
};

TEST_F(AbandonedCallTest, CancelledWhileRunning) {
  const v1::TrainStepRequest heavy = HeavyStep(1024);
  std::unique_ptr<grpc::ClientContext> context = Context();
  grpc::Status status;
  std::thread call([&] {
    v1::TrainStepResponse response;
    status = stub_->TrainStep(context.get(), heavy, &response);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  context->TryCancel();
  call.join();
  EXPECT_EQ(status.error_code(), StatusCode::CANCELLED) << status.error_message();
  ExpectNothingWasApplied();
}

TEST_F(AbandonedCallTest, CancelledBeforeSending) {
  std::unique_ptr<grpc::ClientContext> context = Context();
  context->TryCancel();
  v1::TrainStepResponse response;
  const grpc::Status status = stub_->TrainStep(context.get(), HeavyStep(4), &response);
  EXPECT_EQ(status.error_code(), StatusCode::CANCELLED) << status.error_message();
  ExpectNothingWasApplied();
}

TEST_F(AbandonedCallTest, DeadlineExpiresWhileRunning) {
  // 1 ms cannot hold a 512-image LeNet-5 step (about a gigaflop), so only DEADLINE_EXCEEDED is
  // a correct answer.
  std::unique_ptr<grpc::ClientContext> context = Context(std::chrono::milliseconds(1));
  v1::TrainStepResponse response;
  const grpc::Status status = stub_->TrainStep(context.get(), HeavyStep(512), &response);
  EXPECT_EQ(status.error_code(), StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  ExpectNothingWasApplied();
}

TEST_F(AbandonedCallTest, DeadlineExpiresAfterTheRequestArrived) {
  // 25 ms is time enough to send 3 MiB over loopback, not to run a first LeNet-5 step on 1024
  // images (tens of milliseconds warm, more with the plan to compile): the server's own deadline
  // check has to stop the run.
  std::unique_ptr<grpc::ClientContext> context = Context(std::chrono::milliseconds(25));
  v1::TrainStepResponse response;
  const grpc::Status status = stub_->TrainStep(context.get(), HeavyStep(1024), &response);
  EXPECT_EQ(status.error_code(), StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  ExpectNothingWasApplied();
}

TEST_F(AbandonedCallTest, DeadlineAlreadyPast) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  v1::TrainStepResponse response;
  const grpc::Status status = stub_->TrainStep(context.get(), HeavyStep(4), &response);
  EXPECT_EQ(status.error_code(), StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  ExpectNothingWasApplied();
}

}  // namespace
}  // namespace backflow::testing
