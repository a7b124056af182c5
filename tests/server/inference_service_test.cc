// The Open Inference Protocol (inference.GRPCInferenceService) against an in-process server:
// liveness and readiness, metadata and configuration of LeNet-5 field by field, ModelInfer equal
// to backflow.v1 Infer bitwise in both raw and typed form, names and ids, statistics, integer
// inputs, tokens.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "server/auth/tokens.h"
#include "tests/server/inference_fixture.h"

namespace backflow::testing {
namespace {

std::vector<int64_t> Dims(const google::protobuf::RepeatedField<int64_t>& shape) {
  return {shape.begin(), shape.end()};
}

TEST_F(InferenceTest, ServerIsLiveReadyAndDescribesItself) {
  inference::ServerLiveResponse live;
  ASSERT_TRUE(IsOk(oip_->ServerLive(Context().get(), {}, &live)));
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(IsOk(oip_->ServerReady(Context().get(), {}, &ready)));
  EXPECT_TRUE(ready.ready());
  inference::ServerMetadataResponse metadata;
  ASSERT_TRUE(IsOk(oip_->ServerMetadata(Context().get(), {}, &metadata)));
  EXPECT_EQ(metadata.name(), "backflow");
  EXPECT_FALSE(metadata.version().empty());
  EXPECT_EQ(std::vector<std::string>(metadata.extensions().begin(), metadata.extensions().end()),
            (std::vector<std::string>{"model_configuration", "statistics"}));
}

TEST_F(InferenceTest, ModelReadyByIdAndNameNotReadyWhenMissing) {
  const v1::ModelInfo info = TrainedLeNet("digits");
  for (const std::string& name : {info.id(), std::string("digits")}) {
    inference::ModelReadyRequest request;
    request.set_name(name);
    inference::ModelReadyResponse response;
    ASSERT_TRUE(IsOk(oip_->ModelReady(Context().get(), request, &response))) << name;
    EXPECT_TRUE(response.ready()) << name;
    request.set_version("1");
    ASSERT_TRUE(IsOk(oip_->ModelReady(Context().get(), request, &response))) << name;
    EXPECT_TRUE(response.ready()) << name;
  }
  inference::ModelReadyRequest missing;
  missing.set_name("no-such-model");
  inference::ModelReadyResponse response;
  response.set_ready(true);
  ASSERT_TRUE(IsOk(oip_->ModelReady(Context().get(), missing, &response)));
  EXPECT_FALSE(response.ready());

  inference::ModelReadyRequest versioned;
  versioned.set_name("digits");
  versioned.set_version("2");
  EXPECT_TRUE(HasStatus(oip_->ModelReady(Context().get(), versioned, &response),
                        grpc::StatusCode::NOT_FOUND, "has no version '2'"));
  // Two models of one name: the name is ambiguous, each id still works.
  const v1::ModelInfo twin = TrainedLeNet("digits");
  inference::ModelReadyRequest shared;
  shared.set_name("digits");
  EXPECT_TRUE(HasStatus(oip_->ModelReady(Context().get(), shared, &response),
                        grpc::StatusCode::FAILED_PRECONDITION, "2 models have the name 'digits'"));
  shared.set_name(twin.id());
  ASSERT_TRUE(IsOk(oip_->ModelReady(Context().get(), shared, &response)));
  EXPECT_TRUE(response.ready());
}

TEST_F(InferenceTest, MetadataAndConfigDescribeLeNet) {
  const v1::ModelInfo info = TrainedLeNet();
  inference::ModelMetadataRequest request;
  request.set_name("lenet");
  inference::ModelMetadataResponse metadata;
  ASSERT_TRUE(IsOk(oip_->ModelMetadata(Context().get(), request, &metadata)));
  EXPECT_EQ(metadata.name(), "lenet");
  EXPECT_EQ(std::vector<std::string>(metadata.versions().begin(), metadata.versions().end()),
            std::vector<std::string>{"1"});
  EXPECT_EQ(metadata.platform(), "backflow");
  ASSERT_EQ(metadata.inputs_size(), 2);
  EXPECT_EQ(metadata.inputs(0).name(), "images");
  EXPECT_EQ(metadata.inputs(0).datatype(), "FP32");
  EXPECT_EQ(Dims(metadata.inputs(0).shape()), (std::vector<int64_t>{-1, 1, 28, 28}));
  EXPECT_EQ(metadata.inputs(1).name(), "labels");
  EXPECT_EQ(Dims(metadata.inputs(1).shape()), (std::vector<int64_t>{-1}));
  ASSERT_EQ(metadata.outputs_size(), 2);
  EXPECT_EQ(metadata.outputs(0).name(), "logits");
  EXPECT_EQ(metadata.outputs(0).datatype(), "FP32");
  EXPECT_EQ(Dims(metadata.outputs(0).shape()), (std::vector<int64_t>{-1, 10}));
  EXPECT_EQ(metadata.outputs(1).name(), "accuracy");
  EXPECT_EQ(Dims(metadata.outputs(1).shape()), std::vector<int64_t>{});

  inference::ModelConfigRequest config_request;
  config_request.set_name(info.id());
  inference::ModelConfigResponse config;
  ASSERT_TRUE(IsOk(oip_->ModelConfig(Context().get(), config_request, &config)));
  EXPECT_EQ(config.config().name(), info.id());
  EXPECT_EQ(config.config().platform(), "backflow");
  // Every input is batched: 2^26 elements per tensor / 784 per image row.
  EXPECT_EQ(config.config().max_batch_size(), (int64_t{1} << 26) / 784);
  ASSERT_EQ(config.config().input_size(), 2);
  EXPECT_EQ(config.config().input(0).name(), "images");
  EXPECT_EQ(config.config().input(0).data_type(), inference::TYPE_FP32);
  EXPECT_EQ(Dims(config.config().input(0).dims()), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_FALSE(config.config().input(0).optional());  // every output needs the images
  EXPECT_EQ(Dims(config.config().input(1).dims()), std::vector<int64_t>{});
  EXPECT_TRUE(config.config().input(1).optional());  // logits do not need labels
  ASSERT_EQ(config.config().output_size(), 2);
  EXPECT_EQ(Dims(config.config().output(0).dims()), std::vector<int64_t>{10});
  EXPECT_EQ(config.config().output(1).name(), "accuracy");
  // Dynamic batching is on by default, with no delay (server/batcher.h).
  ASSERT_TRUE(config.config().has_dynamic_batching());
  EXPECT_EQ(config.config().dynamic_batching().max_queue_delay_microseconds(), 0u);
}

TEST_F(InferenceTest, RawModelInferEqualsBackflowInferBitwise) {
  const v1::ModelInfo info = TrainedLeNet();
  const WireTensorMap batch = ImageBatch(8, 42);
  const v1::InferResponse expected = V1Infer(info.id(), Tensors({{"images", batch.at("images")}}));
  ASSERT_EQ(expected.step(), 2);

  inference::ModelInferRequest request;
  request.set_model_name("lenet");
  request.set_id("req-17");
  (*request.mutable_parameters())["trace"].set_string_param("abc");
  AddRawInput(request, "images", batch.at("images"));
  inference::ModelInferResponse response;
  ASSERT_TRUE(IsOk(Infer(request, &response)));
  EXPECT_EQ(response.model_name(), "lenet");
  EXPECT_EQ(response.model_version(), "1");
  EXPECT_EQ(response.id(), "req-17");
  EXPECT_EQ(response.parameters().at("trace").string_param(), "abc");
  EXPECT_EQ(response.parameters().at("step").int64_param(), 2);
  // Without labels only the logits can be computed (accuracy needs them).
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_EQ(response.outputs(0).name(), "logits");
  EXPECT_EQ(response.outputs(0).datatype(), "FP32");
  EXPECT_EQ(Dims(response.outputs(0).shape()), (std::vector<int64_t>{8, 10}));
  EXPECT_FALSE(response.outputs(0).has_contents());
  ASSERT_EQ(response.raw_output_contents_size(), 1);
  EXPECT_TRUE(response.raw_output_contents(0) == expected.outputs().at("logits").data());
}

TEST_F(InferenceTest, TypedModelInferAnswersTypedInTheRequestedOrder) {
  const v1::ModelInfo info = TrainedLeNet();
  const WireTensorMap batch = ImageBatch(4, 7);
  const v1::InferResponse expected = V1Infer(info.id(), batch, {"accuracy", "logits"});

  inference::ModelInferRequest request;
  request.set_model_name(info.id());
  AddFp32Input(request, "images", batch.at("images"));
  AddFp32Input(request, "labels", batch.at("labels"));
  request.add_outputs()->set_name("accuracy");
  auto* logits = request.add_outputs();
  logits->set_name("logits");
  (*logits->mutable_parameters())["note"].set_bool_param(true);
  inference::ModelInferResponse response;
  ASSERT_TRUE(IsOk(Infer(request, &response)));
  EXPECT_EQ(response.raw_output_contents_size(), 0);
  ASSERT_EQ(response.outputs_size(), 2);
  EXPECT_EQ(response.outputs(0).name(), "accuracy");
  EXPECT_EQ(Dims(response.outputs(0).shape()), std::vector<int64_t>{});
  EXPECT_EQ(std::vector<float>(response.outputs(0).contents().fp32_contents().begin(),
                               response.outputs(0).contents().fp32_contents().end()),
            Floats(expected.outputs().at("accuracy")));
  EXPECT_EQ(response.outputs(1).name(), "logits");
  EXPECT_TRUE(response.outputs(1).parameters().at("note").bool_param());
  EXPECT_EQ(std::vector<float>(response.outputs(1).contents().fp32_contents().begin(),
                               response.outputs(1).contents().fp32_contents().end()),
            Floats(expected.outputs().at("logits")));
}

TEST_F(InferenceTest, IntegerInputsTravelAsInt64) {
  StatusOr<v1::Graph> graph = ParseGraphText(R"graph(
    name: "embed"
    placeholders { name: "ids" shape: [ -1 ] dtype: INT64 }
    parameters { name: "table" shape: [ 5, 3 ] init { uniform { low: -1 high: 1 } } }
    nodes { name: "vectors" op: "embedding" inputs: [ "table", "ids" ] }
    outputs: "vectors"
  )graph");
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(*graph));
  inference::ModelMetadataRequest metadata_request;
  metadata_request.set_name(info.id());
  inference::ModelMetadataResponse metadata;
  ASSERT_TRUE(IsOk(oip_->ModelMetadata(Context().get(), metadata_request, &metadata)));
  EXPECT_EQ(metadata.inputs(0).datatype(), "INT64");

  const std::vector<int64_t> ids = {4, 0, 2};
  v1::Tensor wire_ids;
  wire_ids.add_shape(3);
  wire_ids.set_dtype(v1::INT64);
  wire_ids.set_data(std::string(reinterpret_cast<const char*>(ids.data()), 24));
  const v1::InferResponse expected = V1Infer(info.id(), Tensors({{"ids", wire_ids}}));

  inference::ModelInferRequest request;
  request.set_model_name(info.id());
  InferInput* input = request.add_inputs();
  input->set_name("ids");
  input->set_datatype("INT64");
  input->add_shape(3);
  for (int64_t id : ids) input->mutable_contents()->add_int64_contents(id);
  inference::ModelInferResponse response;
  ASSERT_TRUE(IsOk(Infer(request, &response)));
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_EQ(Dims(response.outputs(0).shape()), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(std::vector<float>(response.outputs(0).contents().fp32_contents().begin(),
                               response.outputs(0).contents().fp32_contents().end()),
            Floats(expected.outputs().at("vectors")));
}

TEST_F(InferenceTest, StatisticsCountRowsRunsAndFailures) {
  const v1::ModelInfo info = TrainedLeNet();
  const WireTensorMap batch = ImageBatch(8, 5);
  inference::ModelInferRequest request;
  request.set_model_name("lenet");
  AddRawInput(request, "images", batch.at("images"));
  inference::ModelInferResponse response;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(IsOk(Infer(request, &response)));
  V1Infer(info.id(), Tensors({{"images", batch.at("images")}}));  // backflow.v1 counts too
  request.mutable_inputs(0)->set_datatype("FP64");       // fails once it reaches the model
  EXPECT_FALSE(Infer(request, &response).ok());

  inference::ModelStatisticsRequest stats_request;
  stats_request.set_name("lenet");
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(IsOk(oip_->ModelStatistics(Context().get(), stats_request, &stats)));
  ASSERT_EQ(stats.model_stats_size(), 1);
  const inference::ModelStatistics& model = stats.model_stats(0);
  EXPECT_EQ(model.name(), "lenet");
  EXPECT_EQ(model.version(), "1");
  EXPECT_EQ(model.inference_count(), 32u);
  EXPECT_EQ(model.execution_count(), 4u);
  EXPECT_EQ(model.inference_stats().success().count(), 4u);
  EXPECT_GT(model.inference_stats().success().ns(), 0u);
  EXPECT_EQ(model.inference_stats().fail().count(), 1u);
  EXPECT_EQ(model.inference_stats().compute_infer().count(), 4u);
  EXPECT_GE(model.inference_stats().success().ns(), model.inference_stats().compute_infer().ns());
  EXPECT_GT(model.last_inference(), 0u);

  CreateModel(*stub_, ModelRequest(TinyMlpGraph()));  // unnamed: listed under its id
  ASSERT_TRUE(IsOk(oip_->ModelStatistics(Context().get(), {}, &stats)));
  EXPECT_EQ(stats.model_stats_size(), 2);
}

class InferenceAuthTest : public InferenceTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    const std::string path = token_dir_.path() + "/tokens";
    std::ofstream(path) << Line("reader-token", "read") << Line("team-token", "read prefix=team/")
                        << Line("admin-token", "admin");
    config.auth_tokens = path;
  }
  static std::string Line(const std::string& token, const std::string& rest) {
    return "sha256:" + server::auth::ToHex(server::auth::Sha256(token)) + " " + rest + "\n";
  }
  static std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto context = Context();
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }
  TempDir token_dir_;
};

TEST_F(InferenceAuthTest, ReadTokensInferLivenessIsOpenPrefixesHold) {
  v1::CreateModelRequest create = ModelRequest(TinyMlpGraph());
  create.set_name("other/mlp");
  v1::ModelInfo info;
  ASSERT_TRUE(IsOk(stub_->CreateModel(As("admin-token").get(), create, &info)));
  const TinyBatch batch(3);
  v1::Tensor x;
  TensorToProto(batch.x, &x);
  inference::ModelInferRequest request;
  request.set_model_name("other/mlp");
  AddRawInput(request, "x", x);
  inference::ModelInferResponse response;

  inference::ServerLiveResponse live;
  EXPECT_TRUE(IsOk(oip_->ServerLive(As("").get(), {}, &live)));
  EXPECT_TRUE(HasStatus(oip_->ModelInfer(As("").get(), request, &response),
                        grpc::StatusCode::UNAUTHENTICATED, "requires a token"));
  EXPECT_TRUE(HasStatus(oip_->ModelInfer(As("team-token").get(), request, &response),
                        grpc::StatusCode::PERMISSION_DENIED, "other/mlp"));
  ASSERT_TRUE(IsOk(oip_->ModelInfer(As("reader-token").get(), request, &response)));
  EXPECT_EQ(response.outputs(0).name(), "logits");
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(IsOk(oip_->ModelStatistics(As("team-token").get(), {}, &stats)));
  EXPECT_EQ(stats.model_stats_size(), 0);  // the team's token sees none of other/
}

}  // namespace
}  // namespace backflow::testing
