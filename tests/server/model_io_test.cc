// CreateModel's ONNX form and ExportModel over the wire: the requests refused before any
// translation and the importer's refusals passed through; an ONNX MLP created, described,
// trained like its engine twin and brought back by a restart; NOT_FOUND and RESOURCE_EXHAUSTED
// for exports; and the BACKFLOW export recreating the model it came from (parameters, running
// state and Infer outputs bitwise).
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
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

// The values of the ONNX MLP below, as torch.nn.Linear would hold them: weight [out, in].
std::vector<float> Ramp(int64_t n, float scale, float offset) {
  std::vector<float> values;
  for (int64_t i = 0; i < n; ++i) values.push_back(scale * static_cast<float>(i % 7) + offset);
  return values;
}

void AddInitializer(onnx::GraphProto* graph, const std::string& name, std::vector<int64_t> dims,
                    const std::vector<float>& values) {
  onnx::TensorProto* t = graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
}

void AddGemm(onnx::GraphProto* graph, const std::string& x, const std::string& layer,
             const std::string& y) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type("Gemm");
  node->set_name(layer);
  for (const std::string& input : {x, layer + ".weight", layer + ".bias"}) node->add_input(input);
  node->add_output(y);
  onnx::AttributeProto* trans_b = node->add_attribute();
  trans_b->set_name("transB");
  trans_b->set_type(onnx::AttributeProto::INT);
  trans_b->set_i(1);
}

// x [N, 4] -> Gemm fc1 (8) -> Relu -> Gemm fc2 (3) = logits, as torch.onnx.export writes an
// nn.Sequential of two nn.Linear around an nn.ReLU (opset 14). `op` replaces Relu.
std::string OnnxMlp(const std::string& op = "Relu") {
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.set_producer_name("pytorch");
  model.set_producer_version("1.13.0");
  model.add_opset_import()->set_version(14);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name("torch_jit");
  onnx::ValueInfoProto* x = graph->add_input();
  x->set_name("x");
  auto* type = x->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  type->mutable_shape()->add_dim()->set_dim_param("N");
  type->mutable_shape()->add_dim()->set_dim_value(4);
  AddInitializer(graph, "fc1.weight", {8, 4}, Ramp(32, 0.1f, -0.3f));
  AddInitializer(graph, "fc1.bias", {8}, Ramp(8, 0.05f, -0.1f));
  AddInitializer(graph, "fc2.weight", {3, 8}, Ramp(24, -0.08f, 0.2f));
  AddInitializer(graph, "fc2.bias", {3}, {0.1f, 0.0f, -0.1f});
  AddGemm(graph, "x", "fc1", "h_pre");
  onnx::NodeProto* act = graph->add_node();
  act->set_op_type(op);
  act->set_name("act");
  act->add_input("h_pre");
  act->add_output("h");
  AddGemm(graph, "h", "fc2", "logits");
  graph->add_output()->set_name("logits");
  return model.SerializeAsString();
}

// The ONNX MLP's initializers as wire tensors in `dtype` (float64: widened exactly).
WireTensorMap OnnxMlpValues(v1::DataType dtype) {
  const std::vector<std::pair<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>>
      values = {{"fc1.weight", {{8, 4}, Ramp(32, 0.1f, -0.3f)}},
                {"fc1.bias", {{8}, Ramp(8, 0.05f, -0.1f)}},
                {"fc2.weight", {{3, 8}, Ramp(24, -0.08f, 0.2f)}},
                {"fc2.bias", {{3}, {0.1f, 0.0f, -0.1f}}}};
  WireTensorMap wire;
  for (const auto& [name, value] : values) {
    wire[name] = dtype == v1::FLOAT64
                     ? WireTensor64(value.first,
                                    std::vector<double>(value.second.begin(), value.second.end()))
                     : WireTensor(value.first, value.second);
  }
  return wire;
}

v1::CreateModelRequest OnnxRequest(const std::string& bytes, const std::string& loss = "") {
  v1::CreateModelRequest request;
  request.mutable_onnx()->set_model(bytes);
  if (!loss.empty()) request.mutable_onnx()->mutable_loss()->set_kind(loss);
  *request.mutable_optimizer() = SgdSpec(0.1, 0.9);
  request.set_seed(2);
  return request;
}

// A batch for the ONNX MLP: x [n, 4] and int64 labels in {0, 1, 2}.
WireTensorMap OnnxMlpBatch(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n) * 4);
  for (float& v : x) v = value(rng);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t& label : labels) label = static_cast<int64_t>(rng() % 3);
  WireTensorMap batch;
  batch["x"] = WireTensor({n, 4}, x);
  v1::Tensor& wire = batch["labels"];
  wire.add_shape(n);
  wire.set_dtype(v1::INT64);
  wire.set_data(
      std::string(reinterpret_cast<const char*>(labels.data()), labels.size() * sizeof(int64_t)));
  return batch;
}

using ModelIoTest = ServerTest;

TEST_F(ModelIoTest, OnnxModelIsDescribedTrainedAndStoredLikeItsTranslation) {
  const v1::ModelInfo info = CreateModel(*stub_, OnnxRequest(OnnxMlp(), "softmax_cross_entropy"));
  ASSERT_EQ(info.parameters_size(), 4);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> parameters = {
      {"fc1.bias", {8}}, {"fc1.weight", {8, 4}}, {"fc2.bias", {3}}, {"fc2.weight", {3, 8}}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(info.parameters(i).name(), parameters[i].first);
    EXPECT_EQ(
        std::vector<int64_t>(info.parameters(i).shape().begin(), info.parameters(i).shape().end()),
        parameters[i].second);
  }
  EXPECT_EQ(info.parameter_count(), 8 * 4 + 8 + 3 * 8 + 3);
  ASSERT_EQ(info.inputs_size(), 2);
  EXPECT_EQ(info.inputs(0).name(), "x");
  EXPECT_EQ(info.inputs(1).name(), "labels");
  EXPECT_EQ(info.inputs(1).dtype(), v1::INT64);
  EXPECT_FALSE(info.loss().empty());
  EXPECT_EQ(info.optimizer().momentum(), 0.9);
  // The initial values are the initializers, bitwise.
  ExpectBitwiseEqual(GetParameters(*stub_, info.id()).parameters(), OnnxMlpValues(v1::FLOAT32));

  // The stored request is the plain translation: onnx cleared, the values in initial_parameters.
  grpc::Status status;
  const v1::CreateModelRequest stored =
      Export(*stub_, info.id(), v1::ExportModelRequest::BACKFLOW, &status).model();
  ASSERT_TRUE(IsOk(status));
  EXPECT_FALSE(stored.has_onnx());
  EXPECT_TRUE(stored.has_graph());
  ExpectBitwiseEqual(stored.initial_parameters(), OnnxMlpValues(v1::FLOAT32));

  // Training matches the engine running that translation directly, step for step.
  std::unique_ptr<Trainer> direct = DirectTrainer(stored);
  ASSERT_NE(direct, nullptr);
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    const WireTensorMap batch = OnnxMlpBatch(6, seed);
    const v1::TrainStepResponse step = TrainStep(*stub_, info.id(), batch);
    const auto tensors = EngineTensors(batch);
    StatusOr<StepResult> expected = direct->Step(EngineFeeds(tensors));
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    EXPECT_EQ(step.step(), expected->step);
    EXPECT_EQ(step.loss(), expected->loss);
  }
  const v1::GetParametersResponse trained = GetParameters(*stub_, info.id());
  ExpectBitwiseEqual(trained.parameters(), direct->parameters()->values);

  // A restart (which checkpoints it) brings the model back from its stored request.
  Restart();
  v1::ModelInfo back = GetModelInfo(*stub_, info.id());
  EXPECT_EQ(back.step(), 3);
  EXPECT_EQ(back.statistics().samples(), 3 * 6);
  back.set_checkpoint_step(info.checkpoint_step());
  back.set_step(0);
  *back.mutable_statistics() = info.statistics();  // the answer to CreateModel: never trained
  EXPECT_TRUE(MessageDifferencer::Equals(back, info));
  ExpectBitwiseEqual(GetParameters(*stub_, info.id()).parameters(), trained.parameters());
}

TEST_F(ModelIoTest, OnnxModelInFloat64HoldsTheInitializersWidened) {
  v1::CreateModelRequest request = OnnxRequest(OnnxMlp(), "softmax_cross_entropy");
  request.set_dtype(v1::FLOAT64);
  const v1::ModelInfo info = CreateModel(*stub_, request);
  EXPECT_EQ(info.dtype(), v1::FLOAT64);
  ExpectBitwiseEqual(GetParameters(*stub_, info.id()).parameters(), OnnxMlpValues(v1::FLOAT64));
  TrainStep(*stub_, info.id(), [] {
    WireTensorMap batch = OnnxMlpBatch(4, 7);
    const std::vector<float> x = Floats(batch["x"]);
    batch["x"] = WireTensor64({4, 4}, std::vector<double>(x.begin(), x.end()));
    return batch;
  }());
}

TEST_F(ModelIoTest, OnnxFrozenInitializersAreNotParameters) {
  v1::CreateModelRequest request = OnnxRequest(OnnxMlp(), "softmax_cross_entropy");
  request.mutable_onnx()->add_frozen("fc1.weight");
  request.mutable_onnx()->add_frozen("fc1.bias");
  const v1::ModelInfo info = CreateModel(*stub_, request);
  ASSERT_EQ(info.parameters_size(), 2);
  EXPECT_EQ(info.parameters(0).name(), "fc2.bias");
  EXPECT_EQ(info.parameters(1).name(), "fc2.weight");
  EXPECT_EQ(info.parameter_count(), 3 * 8 + 3);
}

TEST_F(ModelIoTest, OnnxImportErrorsPassThroughAndCreateNothing) {
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(
      stub_->CreateModel(Context().get(), OnnxRequest("\xff\xff not onnx", "squared_error"), &info),
      grpc::StatusCode::INVALID_ARGUMENT, "not an ONNX model"));
  EXPECT_TRUE(HasStatus(
      stub_->CreateModel(Context().get(),
                         OnnxRequest(OnnxMlp("NonMaxSuppression"), "softmax_cross_entropy"), &info),
      grpc::StatusCode::INVALID_ARGUMENT, "ONNX node 'act' (NonMaxSuppression, opset 14)"));
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), OnnxRequest(OnnxMlp(), "hinge"), &info),
                        grpc::StatusCode::INVALID_ARGUMENT,
                        "loss: kind 'hinge' is not one of softmax_cross_entropy, squared_error, "
                        "sigmoid_cross_entropy"));
  v1::ListModelsResponse list;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), {}, &list)));
  EXPECT_EQ(list.models_size(), 0);
  // The server goes on creating models.
  EXPECT_EQ(CreateModel(*stub_, OnnxRequest(OnnxMlp())).parameters_size(), 4);
}

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

// An ONNX initializer's bytes, whether the exporter wrote raw_data or the typed field.
std::string InitializerBytes(const onnx::TensorProto& t) {
  if (t.has_raw_data()) return t.raw_data();
  if (t.data_type() == onnx::TensorProto::DOUBLE) {
    return std::string(reinterpret_cast<const char*>(t.double_data().data()),
                       t.double_data_size() * sizeof(double));
  }
  return std::string(reinterpret_cast<const char*>(t.float_data().data()),
                     t.float_data_size() * sizeof(float));
}

// ExportModel ONNX of `id`: a valid opset-14 ModelProto whose initializers include every
// parameter and state of the model's snapshot bit for bit (the step it reports).
onnx::ModelProto ExportOnnxChecked(v1::Backflow::Stub& stub, const std::string& id, int64_t step) {
  grpc::Status status;
  const v1::ExportModelResponse exported = Export(stub, id, v1::ExportModelRequest::ONNX, &status);
  EXPECT_TRUE(IsOk(status));
  EXPECT_EQ(exported.step(), step);
  EXPECT_FALSE(exported.has_model());
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(exported.onnx()));
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& error) {
    ADD_FAILURE() << "onnx::checker: " << error.what();
  }
  EXPECT_EQ(model.producer_name(), "backflow");
  EXPECT_EQ(model.opset_import_size(), 1);
  if (model.opset_import_size() > 0) {
    EXPECT_EQ(model.opset_import(0).version(), 14);
  }
  std::map<std::string, std::string> initializers;
  for (const onnx::TensorProto& t : model.graph().initializer()) {
    initializers[t.name()] = InitializerBytes(t);
  }
  const v1::GetParametersResponse snapshot = GetParameters(stub, id);
  EXPECT_EQ(snapshot.step(), step);
  for (const auto* values : {&snapshot.parameters(), &snapshot.state()}) {
    for (const auto& [name, tensor] : *values) {
      auto it = initializers.find(name);
      if (it == initializers.end()) {
        ADD_FAILURE() << "no initializer '" << name << "'";
      } else {
        EXPECT_TRUE(it->second == tensor.data()) << "initializer '" << name << "' differs";
      }
    }
  }
  return model;
}

// import -> train -> export -> import: the same Infer outputs, bitwise.
TEST_F(ModelIoTest, OnnxExportOfATrainedOnnxModelImportsToTheSameModel) {
  const v1::ModelInfo info = CreateModel(*stub_, OnnxRequest(OnnxMlp(), "softmax_cross_entropy"));
  for (uint32_t seed = 1; seed <= 3; ++seed) TrainStep(*stub_, info.id(), OnnxMlpBatch(6, seed));
  const onnx::ModelProto exported = ExportOnnxChecked(*stub_, info.id(), 3);
  ASSERT_EQ(exported.graph().output_size(), 1);  // logits; no loss, no accuracy
  ASSERT_EQ(exported.graph().input_size(), 1);   // x; no labels

  const v1::ModelInfo again = CreateModel(*stub_, OnnxRequest(exported.SerializeAsString()));
  ExpectBitwiseEqual(GetParameters(*stub_, again.id()).parameters(),
                     GetParameters(*stub_, info.id()).parameters());
  WireTensorMap x = OnnxMlpBatch(9, 11);
  x.erase("labels");
  const v1::InferResponse original = Infer(*stub_, info.id(), x);
  ASSERT_EQ(original.outputs().count("logits"), 1u);
  const v1::InferResponse reimported = Infer(*stub_, again.id(), x);
  ASSERT_EQ(reimported.outputs().count("logits"), 1u);
  EXPECT_EQ(reimported.outputs().at("logits").data(), original.outputs().at("logits").data());
}

// A backflow graph with batch norm: its running statistics travel as initializers.
TEST_F(ModelIoTest, OnnxExportOfATrainedResNetCarriesItsRunningState) {
  const v1::ModelInfo info =
      CreateModel(*stub_, ModelRequest(ModelGraph("resnet_fmnist.pbtxt"), SgdSpec(0.1), 5));
  for (uint32_t seed = 1; seed <= 2; ++seed) TrainStep(*stub_, info.id(), ResNetBatch(4, seed));
  const onnx::ModelProto exported = ExportOnnxChecked(*stub_, info.id(), 2);

  const v1::ModelInfo again = CreateModel(*stub_, OnnxRequest(exported.SerializeAsString()));
  const v1::GetParametersResponse original = GetParameters(*stub_, info.id());
  const v1::GetParametersResponse reimported = GetParameters(*stub_, again.id());
  ExpectBitwiseEqual(reimported.parameters(), original.parameters());
  ExpectBitwiseEqual(reimported.state(), original.state());
  WireTensorMap images = ResNetBatch(5, 9);
  images.erase("labels");
  const v1::InferResponse expected = Infer(*stub_, info.id(), images);
  const v1::InferResponse actual = Infer(*stub_, again.id(), images);
  ASSERT_EQ(actual.outputs().count("logits"), 1u);
  EXPECT_EQ(actual.outputs().at("logits").data(), expected.outputs().at("logits").data());
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

// A server that takes graphs of at most 2 nodes: the translation's limits are the server's.
class SmallGraphTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override { config.limits.max_nodes = 2; }
};

TEST_F(SmallGraphTest, AnOnnxModelOverTheNodeLimitIsResourceExhausted) {
  v1::ModelInfo info;
  EXPECT_TRUE(HasStatus(stub_->CreateModel(Context().get(), OnnxRequest(OnnxMlp()), &info),
                        grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the translated graph has more than 2 nodes"));
}

}  // namespace
}  // namespace backflow::testing
