// CreateModel's ONNX form and ExportModel over the wire: the requests refused before any
// translation, NOT_FOUND and RESOURCE_EXHAUSTED for exports, and the BACKFLOW export recreating
// the model it came from (parameters, running state and Infer outputs bitwise).
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

using google::protobuf::util::MessageDifferencer;

// A batch for models/resnet_fmnist.pbtxt: images as ImageBatch draws them, labels int64.
WireTensorMap ResNetBatch(int n, uint32_t seed) {
  WireTensorMap batch = ImageBatch(n, seed);
  std::vector<int64_t> labels;
  for (float label : Floats(batch["labels"])) labels.push_back(static_cast<int64_t>(label));
  v1::Tensor& wire = batch["labels"];
  wire.set_dtype(v1::INT64);
  wire.set_data(
      std::string(reinterpret_cast<const char*>(labels.data()), labels.size() * sizeof(int64_t)));
  return batch;
}

v1::ExportModelResponse Export(v1::Backflow::Stub& stub, const std::string& id,
                               v1::ExportModelRequest::Format format, grpc::Status* status) {
  v1::ExportModelRequest request;
  request.set_model_id(id);
  request.set_format(format);
  v1::ExportModelResponse response;
  *status = stub.ExportModel(Context().get(), request, &response);
  return response;
}

v1::InferResponse Infer(v1::Backflow::Stub& stub, const std::string& id,
                        const WireTensorMap& inputs) {
  v1::InferRequest request;
  request.set_model_id(id);
  *request.mutable_inputs() = inputs;
  v1::InferResponse response;
  EXPECT_TRUE(IsOk(stub.Infer(Context().get(), request, &response)));
  return response;
}

using ModelIoTest = ServerTest;

TEST_F(ModelIoTest, CreateModelRefusesOnnxBesideAGraph) {
  v1::CreateModelRequest request = ModelRequest(TinyMlpGraph());
  request.mutable_onnx()->set_model("not looked at");
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), request, &info),
                        grpc::StatusCode::INVALID_ARGUMENT,
                        "give graph or onnx, not both: an ONNX model brings its graph"));
}

TEST_F(ModelIoTest, CreateModelRefusesOnnxWithInitialParameters) {
  v1::CreateModelRequest request;
  request.mutable_onnx()->set_model("not looked at");
  (*request.mutable_initial_parameters())["w1"] = WireTensor({1}, {1.0f});
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), request, &info),
                        grpc::StatusCode::INVALID_ARGUMENT,
                        "initial_parameters must be empty with onnx: the ONNX initializers are "
                        "the initial values"));
}

TEST_F(ModelIoTest, CreateModelRefusesAnEmptyOnnxModel) {
  v1::CreateModelRequest request;
  request.mutable_onnx()->mutable_loss()->set_kind("softmax_cross_entropy");
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), request, &info),
                        grpc::StatusCode::INVALID_ARGUMENT,
                        "onnx.model: empty (expected a serialized onnx.ModelProto)"));
  // Nothing was created, and the server still serves.
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), {}, &list)));
  EXPECT_EQ(list.models_size(), 0);
}

TEST_F(ModelIoTest, ExportOfAnUnknownModelIsNotFound) {
  for (auto format : {v1::ExportModelRequest::ONNX, v1::ExportModelRequest::BACKFLOW}) {
    grpc::Status status;
    Export(*stub_, "m-nope", format, &status);
    EXPECT_TRUE(HasStatus(status, grpc::StatusCode::NOT_FOUND, "model 'm-nope' not found"));
  }
}

TEST_F(ModelIoTest, ExportOfAnUnknownFormatIsInvalid) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  grpc::Status status;
  Export(*stub_, info.id(), static_cast<v1::ExportModelRequest::Format>(7), &status);
  EXPECT_TRUE(
      HasStatus(status, grpc::StatusCode::INVALID_ARGUMENT, "format 7 is not ONNX or BACKFLOW"));
}

// BACKFLOW: the stored request with the snapshot's values, which recreates the model exactly.
TEST_F(ModelIoTest, BackflowExportRecreatesTheModelBitwise) {
  v1::CreateModelRequest request = ModelRequest(ModelGraph("resnet_fmnist.pbtxt"), SgdSpec(0.1), 5);
  request.set_name("resnet-a");
  const v1::ModelInfo info = CreateModel(*stub_, request);
  for (uint32_t seed = 1; seed <= 3; ++seed) TrainStep(*stub_, info.id(), ResNetBatch(4, seed));

  grpc::Status status;
  const v1::ExportModelResponse exported =
      Export(*stub_, info.id(), v1::ExportModelRequest::BACKFLOW, &status);
  ASSERT_TRUE(IsOk(status));
  EXPECT_EQ(exported.step(), 3);
  EXPECT_TRUE(exported.onnx().empty());
  // Everything but the values is the request the model was created with.
  v1::CreateModelRequest rest = exported.model();
  rest.clear_initial_parameters();
  EXPECT_TRUE(MessageDifferencer::Equals(rest, request));
  // The values are the snapshot's: 20 parameters and 12 running statistics.
  const v1::GetParametersResponse trained = GetParameters(*stub_, info.id());
  EXPECT_EQ(trained.step(), 3);
  ASSERT_EQ(trained.state_size(), 12);
  WireTensorMap values = trained.parameters();
  for (const auto& [name, tensor] : trained.state()) values[name] = tensor;
  ExpectBitwiseEqual(exported.model().initial_parameters(), values);

  const v1::ModelInfo copy = CreateModel(*stub_, exported.model());
  ASSERT_NE(copy.id(), info.id());
  EXPECT_EQ(copy.step(), 0);  // the values, not the step count, travel
  const v1::GetParametersResponse copied = GetParameters(*stub_, copy.id());
  ExpectBitwiseEqual(copied.parameters(), trained.parameters());
  ExpectBitwiseEqual(copied.state(), trained.state());
  WireTensorMap images = ResNetBatch(5, 9);
  images.erase("labels");
  const v1::InferResponse original = Infer(*stub_, info.id(), images);
  ASSERT_EQ(original.outputs().count("logits"), 1u);
  ExpectBitwiseEqual(Infer(*stub_, copy.id(), images).outputs(), original.outputs());
}

TEST_F(ModelIoTest, BackflowExportOfAFloat64ModelKeepsItsDtype) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph(), {}, 3, v1::FLOAT64));
  grpc::Status status;
  const v1::ExportModelResponse exported =
      Export(*stub_, info.id(), v1::ExportModelRequest::BACKFLOW, &status);
  ASSERT_TRUE(IsOk(status));
  EXPECT_EQ(exported.model().dtype(), v1::FLOAT64);
  ASSERT_EQ(exported.model().initial_parameters_size(), 4);
  for (const auto& [name, tensor] : exported.model().initial_parameters()) {
    EXPECT_EQ(tensor.dtype(), v1::FLOAT64) << name;
  }
  ExpectBitwiseEqual(exported.model().initial_parameters(),
                     GetParameters(*stub_, info.id()).parameters());
}

// A server whose messages hold a TinyMlp CreateModelRequest but not that and its values.
class SmallMessageTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.limits.max_message_bytes =
        static_cast<int64_t>(ModelRequest(TinyMlpGraph()).ByteSizeLong()) + 64;
  }
};

TEST_F(SmallMessageTest, AnExportOverTheMessageLimitIsResourceExhausted) {
  const v1::ModelInfo info = CreateModel(*stub_, ModelRequest(TinyMlpGraph()));
  grpc::Status status;
  Export(*stub_, info.id(), v1::ExportModelRequest::BACKFLOW, &status);
  EXPECT_TRUE(HasStatus(status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the export of model '" + info.id() + "' is "));
  EXPECT_TRUE(HasStatus(status, grpc::StatusCode::RESOURCE_EXHAUSTED,
                        " bytes, over the server's --max-message-bytes of "));
  // The server goes on serving the model.
  EXPECT_EQ(GetModelInfo(*stub_, info.id()).id(), info.id());
}

}  // namespace
}  // namespace backflow::testing
