// The CLI's model files: `models create --onnx` and `train --onnx` on an ONNX softmax
// regression written here, `models export --backflow` and `models create --backflow` recreating
// a trained model bitwise, the usage errors of --onnx, --loss, --backflow and `models export`,
// and the failures of missing files, bad ONNX and unknown models.
#include <filesystem>
#include <fstream>
#include <regex>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/ir/tensor_proto.h"
#include "onnx/onnx_pb.h"
#include "tests/clients/cli_fixture.h"
#include "tests/clients/image_step.h"

namespace backflow::testing {
namespace {

class CliModelIoTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
    files_ = std::make_unique<ProcessTempDir>();
  }
  std::string File(const std::string& name) const {
    return (std::filesystem::path(files_->path()) / name).string();
  }
  static std::string Id(std::string out) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    EXPECT_TRUE(std::regex_match(out, std::regex("m-[0-9a-f]+"))) << out;
    return out;
  }
  v1::GetParametersResponse Parameters(const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    EXPECT_TRUE(stub_->GetParameters(Deadline().get(), request, &response).ok());
    return response;
  }
  void TrainOneStep(const std::string& id) { TrainOneImageStep(*stub_, id); }

  std::unique_ptr<v1::Backflow::Stub> stub_;
  std::unique_ptr<ProcessTempDir> files_;
};

// images [N, 1, 28, 28] -> Flatten -> Gemm (fc: 784 -> 10, weights 0) = logits: softmax
// regression for Fashion-MNIST as torch.onnx.export writes it (opset 14).
std::string SoftmaxRegressionOnnx() {
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.add_opset_import()->set_version(14);
  onnx::GraphProto* graph = model.mutable_graph();
  onnx::ValueInfoProto* images = graph->add_input();
  images->set_name("images");
  auto* type = images->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  type->mutable_shape()->add_dim()->set_dim_param("N");
  for (int64_t d : {1, 28, 28}) type->mutable_shape()->add_dim()->set_dim_value(d);
  for (const auto& [name, dims] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"fc.weight", {10, 784}}, {"fc.bias", {10}}}) {
    onnx::TensorProto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) t->add_dims(d), n *= d;
    t->set_raw_data(std::string(static_cast<size_t>(n) * sizeof(float), '\0'));
  }
  onnx::NodeProto* flatten = graph->add_node();
  flatten->set_op_type("Flatten");
  flatten->add_input("images");
  flatten->add_output("flat");
  onnx::NodeProto* gemm = graph->add_node();
  gemm->set_op_type("Gemm");
  for (const char* input : {"flat", "fc.weight", "fc.bias"}) gemm->add_input(input);
  gemm->add_output("logits");
  onnx::AttributeProto* trans_b = gemm->add_attribute();
  trans_b->set_name("transB");
  trans_b->set_type(onnx::AttributeProto::INT);
  trans_b->set_i(1);
  graph->add_output()->set_name("logits");
  return model.SerializeAsString();
}

std::map<std::string, std::string> Bytes(const google::protobuf::Map<std::string, v1::Tensor>& m) {
  std::map<std::string, std::string> bytes;
  for (const auto& [name, tensor] : m) bytes.emplace(name, tensor.data());
  return bytes;
}

TEST_F(CliModelIoTest, UsageErrorsNameTheFlag) {
  const std::string graph = Source("models/lenet5.pbtxt");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"models", "create"}, "missing GRAPH.pbtxt (or --onnx FILE, or --backflow FILE)"},
      {{"models", "create", graph, "--onnx", "m.onnx"},
       "give one of GRAPH.pbtxt, --onnx FILE and --backflow FILE"},
      {{"models", "create", "--onnx", "m.onnx", "--backflow", "m.pb"},
       "give one of GRAPH.pbtxt, --onnx FILE and --backflow FILE"},
      {{"models", "create", graph, "--loss", "squared_error"}, "--loss needs --onnx FILE"},
      {{"models", "create", graph, "--frozen", "w"}, "--frozen needs --onnx FILE"},
      {{"models", "create", "--onnx", "m.onnx", "--loss", "hinge"},
       "--loss: 'hinge' is not softmax_cross_entropy, squared_error or sigmoid_cross_entropy"},
      {{"models", "create", "--backflow", "m.pb", "--lr", "0.1"},
       "--lr does not apply to --backflow FILE, which recreates the model as it was exported"},
      {{"models", "export", "m-1"}, "give --onnx FILE or --backflow FILE (one of them)"},
      {{"models", "export", "m-1", "--onnx", "a", "--backflow", "b"},
       "give --onnx FILE or --backflow FILE (one of them)"},
      {{"models", "export"}, "missing ID"},
      {{"train", "--onnx", "m.onnx"},
       "--onnx needs --loss KIND to train (softmax_cross_entropy, squared_error or "
       "sigmoid_cross_entropy)"},
      {{"train", "--onnx", "m.onnx", "--model", graph, "--loss", "squared_error"},
       "give --model GRAPH.pbtxt or --onnx FILE (a new model), or --model-id ID"},
      {{"train", "--model", graph, "--labels", "y"}, "--labels needs --onnx FILE"},
  };
  for (const auto& [args, message] : cases) {
    const CliResult result = Cli(args);
    EXPECT_EQ(result.exit_code, 2) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_NE(result.err.find(message), std::string::npos) << ::testing::PrintToString(args) << "\n"
                                                           << result.err;
    EXPECT_NE(result.err.find("Try 'backflow "), std::string::npos) << result.err;
    EXPECT_EQ(result.out, "");
  }
}

TEST_F(CliModelIoTest, MissingFilesAndUnknownModelsFailWithOneLine) {
  const std::string missing = File("none.onnx");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"models", "create", "--onnx", missing},
       "backflow: models create: " + missing + ": cannot read (No such file or directory)\n"},
      {{"models", "create", "--backflow", missing},
       "backflow: models create: " + missing + ": cannot read (No such file or directory)\n"},
      {{"train", "--onnx", missing, "--loss", "softmax_cross_entropy", "--limit", "64"},
       "backflow: train: " + missing + ": cannot read (No such file or directory)\n"},
      {{"models", "export", "m-none", "--backflow", File("x.pb")},
       "backflow: models export m-none: NOT_FOUND: model 'm-none' not found\n"},
  };
  for (const auto& [args, err] : cases) {
    const CliResult result = Cli(args);
    EXPECT_EQ(result.exit_code, 1) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_EQ(result.err, err);
    EXPECT_EQ(result.out, "");
  }
  EXPECT_FALSE(std::filesystem::exists(File("x.pb")));

  std::ofstream(File("junk.pb")) << "junk";
  const CliResult junk = Cli({"models", "create", "--backflow", File("junk.pb")});
  EXPECT_EQ(junk.exit_code, 1) << junk;
  EXPECT_EQ(junk.err, "backflow: models create: " + File("junk.pb") +
                          ": not a CreateModelRequest (write one with `backflow models export ID "
                          "--backflow FILE`)\n");
}

TEST_F(CliModelIoTest, BackflowExportThenCreateRecreatesTheModelBitwise) {
  const std::string id = Id(CliOk({"models", "create", Source("models/lenet5.pbtxt"), "--lr",
                                   "0.05", "--momentum", "0.9", "--seed", "4", "--name", "le"}));
  TrainOneStep(id);
  TrainOneStep(id);
  const std::string path = File("lenet.pb");
  const std::string out = CliOk({"models", "export", id, "--backflow", path});
  const auto size = std::filesystem::file_size(path);
  EXPECT_EQ(out,
            "model " + id + " at step 2 -> " + path + " (" + std::to_string(size) + " bytes)\n");

  // The file is the binary CreateModelRequest, its values those of step 2.
  std::ifstream in(path, std::ios::binary);
  v1::CreateModelRequest request;
  ASSERT_TRUE(request.ParseFromIstream(&in));
  EXPECT_EQ(request.graph().name(), "lenet5");
  EXPECT_EQ(request.name(), "le");
  EXPECT_EQ(request.seed(), 4u);
  EXPECT_DOUBLE_EQ(request.optimizer().momentum(), 0.9);
  const v1::GetParametersResponse trained = Parameters(id);
  ASSERT_EQ(trained.step(), 2);
  EXPECT_EQ(Bytes(request.initial_parameters()), Bytes(trained.parameters()));

  const nlohmann::json copy = nlohmann::json::parse(
      CliOk({"models", "create", "--backflow", path, "--name", "le-copy", "--json"}));
  EXPECT_EQ(copy["name"], "le-copy");
  EXPECT_EQ(copy["graph_name"], "lenet5");
  EXPECT_EQ(copy["step"], 0);
  EXPECT_EQ(copy["optimizer"]["momentum"], 0.9);
  EXPECT_EQ(Bytes(Parameters(copy["id"]).parameters()), Bytes(trained.parameters()));
  // Without --name the exported name stays.
  const std::string again = Id(CliOk({"models", "create", "--backflow", path}));
  EXPECT_EQ(nlohmann::json::parse(CliOk({"models", "show", again, "--json"}))["name"], "le");
}

TEST_F(CliModelIoTest, OnnxModelsAreCreatedAndTrained) {
  const std::string path = File("regression.onnx");
  std::ofstream(path, std::ios::binary) << SoftmaxRegressionOnnx();

  const nlohmann::json info = nlohmann::json::parse(
      CliOk({"models", "create", "--onnx", path, "--loss", "softmax_cross_entropy", "--json"}));
  ASSERT_EQ(info["parameters"].size(), 2u);
  EXPECT_EQ(info["parameters"][0]["name"], "fc.bias");
  EXPECT_EQ(info["parameters"][1]["name"], "fc.weight");
  EXPECT_EQ(info["parameter_count"], 7850);
  EXPECT_EQ(info["inputs"][0]["name"], "images");
  EXPECT_EQ(info["inputs"][0]["shape"], nlohmann::json({-1, 1, 28, 28}));
  EXPECT_EQ(info["inputs"][1]["name"], "labels");
  EXPECT_EQ(info["inputs"][1]["dtype"], "int64");

  const nlohmann::json frozen =
      nlohmann::json::parse(CliOk({"models", "create", "--onnx", path, "--frozen", "fc.weight",
                                   "--dtype", "float64", "--json"}));
  ASSERT_EQ(frozen["parameters"].size(), 1u);
  EXPECT_EQ(frozen["parameters"][0]["name"], "fc.bias");
  EXPECT_EQ(frozen["dtype"], "float64");
  EXPECT_EQ(frozen["loss"], "");  // no --loss: inference only

  // Softmax regression from zero weights: 20 steps of SGD are well past chance (10 %).
  const CliResult trained = Cli({"train", "--onnx", path, "--loss", "softmax_cross_entropy",
                                 "--limit", "1280", "--lr", "0.1", "--test-limit", "500", "--json",
                                 "--keep"},
                                std::chrono::seconds(120));
  ASSERT_EQ(trained.exit_code, 0) << trained;
  const nlohmann::json summary = LastJsonLine(trained.out);
  EXPECT_EQ(summary["steps"], 20);
  EXPECT_GT(summary["test_accuracy"].get<double>(), 0.5) << trained.out;  // 68 % measured

  // The trained model back as ONNX, and that file imported again: the same values.
  const std::string id = summary["model_id"];
  const std::string exported = File("trained.onnx");
  const std::string out = CliOk({"models", "export", id, "--onnx", exported});
  EXPECT_EQ(out, "model " + id + " at step 20 -> " + exported + " (" +
                     std::to_string(std::filesystem::file_size(exported)) + " bytes)\n");
  const std::string again = Id(CliOk({"models", "create", "--onnx", exported}));
  EXPECT_EQ(Bytes(Parameters(again).parameters()), Bytes(Parameters(id).parameters()));

  const std::string junk = File("junk.onnx");
  std::ofstream(junk, std::ios::binary) << "\xff\xff not onnx";
  const CliResult bad = Cli({"models", "create", "--onnx", junk, "--loss", "squared_error"});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_EQ(bad.err,
            "backflow: models create: INVALID_ARGUMENT: the bytes are not an ONNX model (they do "
            "not parse as onnx.ModelProto)\n");
}

}  // namespace
}  // namespace backflow::testing
