// The backflow CLI as a child process against a backflow-server child: help and usage errors,
// health, models create/list/show/delete, params get/set through .npy files, checkpoints,
// infer, and the error lines of failed calls. Values are checked against direct RPCs.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>

#include "backflow/v1/service.grpc.pb.h"
#include "clients/cli/npy.h"
#include "engine/ir/tensor_proto.h"
#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

using cli::ReadNpy;
using cli::WriteNpy;

class CliCommandsTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
    files_ = std::make_unique<ProcessTempDir>();
  }

  // Creates a model from models/NAME.pbtxt through the CLI and returns its id.
  std::string CreateModel(const std::string& graph, std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), {"models", "create", Source("models/" + graph + ".pbtxt")});
    std::string out = CliOk(flags);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    EXPECT_TRUE(std::regex_match(out, std::regex("[A-Za-z0-9_-]+"))) << out;
    return out;
  }
  std::map<std::string, Tensor> Parameters(const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    EXPECT_TRUE(stub_->GetParameters(Deadline().get(), request, &response).ok());
    std::map<std::string, Tensor> parameters;
    for (const auto& [name, proto] : response.parameters()) {
      parameters[name] = *TensorFromProto(proto, name, int64_t{1} << 30);
    }
    return parameters;
  }
  // One TrainStep of mlp_tanh on a fixed batch of 4.
  int64_t TrainOneStep(const std::string& id) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    std::vector<double> pixels(4 * 784);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<double>(i % 17) / 17;
    TensorToProto(Tensor::FromValues(DType::kFloat32, Shape{4, 1, 28, 28}, pixels),
                  &(*request.mutable_batch())["images"]);
    TensorToProto(Tensor::FromValues(DType::kFloat32, Shape{4}, std::vector<double>{0, 3, 7, 9}),
                  &(*request.mutable_batch())["labels"]);
    v1::TrainStepResponse response;
    const grpc::Status status = stub_->TrainStep(Deadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.step();
  }
  std::string File(const std::string& name) const {
    return (std::filesystem::path(files_->path()) / name).string();
  }

  std::unique_ptr<v1::Backflow::Stub> stub_;
  std::unique_ptr<ProcessTempDir> files_;
};

TEST_F(CliCommandsTest, HealthPrintsServing) {
  const CliResult result = Cli({"health"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "SERVING\n");
  EXPECT_EQ(CliOk({"health", "--service", "backflow.v1.Backflow"}), "SERVING\n");
}

TEST_F(CliCommandsTest, HelpExitsZeroAndUsageErrorsExitTwo) {
  CliResult help = RunCli({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help;
  for (const char* command :
       {"health", "models create", "params get", "checkpoint restore", "infer", "eval", "train"}) {
    EXPECT_NE(help.out.find(command), std::string::npos) << command;
  }
  help = RunCli({"models", "create", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help;
  EXPECT_NE(help.out.find("--optimizer sgd|adam|adamw"), std::string::npos) << help.out;

  const std::vector<std::vector<std::string>> bad = {
      {"models", "list", "--bogus"},
      {"models", "create"},
      {"models", "frobnicate"},
      {"frobnicate"},
      {},
      {"train", "--model", "x.pbtxt", "--epochs", "two"},
      {"params", "set", "m-1", "no-equals-sign"},
      {"--timeout", "soon", "health"},
  };
  for (const auto& args : bad) {
    const CliResult result = RunCli(args);
    EXPECT_EQ(result.exit_code, 2) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_NE(result.err.find("Try 'backflow"), std::string::npos) << result.err;
    EXPECT_EQ(result.out, "");
  }
  EXPECT_NE(RunCli({"models", "list", "--bogus"}).err.find("unknown flag '--bogus'"),
            std::string::npos);
}

TEST_F(CliCommandsTest, ModelsCreateListShowDelete) {
  const CliResult created = Cli({"models", "create", Source("models/lenet5.pbtxt"), "--name",
                                 "lenet", "--momentum", "0.9", "--seed", "3", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created;
  const nlohmann::json info = nlohmann::json::parse(created.out);
  const std::string id = info["id"];
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(info["name"], "lenet");
  EXPECT_EQ(info["graph_name"], "lenet5");
  EXPECT_EQ(info["parameter_count"], 61706);
  EXPECT_EQ(info["parameters"].size(), 10u);
  EXPECT_EQ(info["parameters"][1]["name"], "c1_w");
  EXPECT_EQ(info["parameters"][1]["shape"], nlohmann::json({6, 1, 5, 5}));
  EXPECT_EQ(info["inputs"][0]["shape"], nlohmann::json({-1, 1, 28, 28}));
  EXPECT_EQ(info["step"], 0);
  EXPECT_EQ(info["checkpoint_step"], -1);
  EXPECT_EQ(info["optimizer"]["kind"], "sgd");
  EXPECT_EQ(info["optimizer"]["momentum"], 0.9);
  EXPECT_GT(info["flops_per_sample"].get<int64_t>(), 0);
  const std::string plain = CreateModel("mlp_tanh", {"--optimizer", "adam", "--lr", "0.001"});

  const std::string table = CliOk({"models", "list"});
  EXPECT_TRUE(table.starts_with("ID")) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex(id + " +lenet +lenet5 +61706 +0 +-\n"))) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex(plain + " +- +mlp_tanh +203530 +0 +-\n")))
      << table;

  const std::string shown = CliOk({"models", "show", id});
  for (const char* line :
       {"graph         lenet5\n", "optimizer     sgd lr=0.01 momentum=0.9\n",
        "  c1_w  [6, 1, 5, 5]\n", "  images  [N, 1, 28, 28]\n", "  logits    [N, 10]\n",
        "loss          loss\n", "metrics       accuracy\n", "step          0 (no checkpoint)\n"}) {
    EXPECT_NE(shown.find(line), std::string::npos) << line << " not in\n" << shown;
  }
  EXPECT_EQ(nlohmann::json::parse(CliOk({"models", "show", plain, "--json"}))["optimizer"]["kind"],
            "adam");

  EXPECT_EQ(CliOk({"models", "delete", plain}), "deleted " + plain + "\n");
  const CliResult gone = Cli({"models", "show", plain});
  EXPECT_EQ(gone.exit_code, 1) << gone;
  EXPECT_TRUE(gone.err.starts_with("backflow: models show " + plain + ": NOT_FOUND: ")) << gone;
  EXPECT_EQ(CliOk({"models", "list"}).find(plain), std::string::npos);
  const nlohmann::json list = nlohmann::json::parse(CliOk({"models", "list", "--json"}));
  ASSERT_TRUE(list.is_array());
  EXPECT_TRUE(std::any_of(list.begin(), list.end(), [&](auto& m) { return m["id"] == id; }));
}

TEST_F(CliCommandsTest, ModelsShowPrintsTrainingAndItsHistory) {
  const std::string id = CreateModel("mlp_tanh");
  EXPECT_NE(CliOk({"models", "show", id}).find("trained       never\n"), std::string::npos);
  for (int i = 0; i < 3; ++i) TrainOneStep(id);
  v1::GetModelRequest request;
  request.set_model_id(id);
  request.set_history(true);
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(Deadline().get(), request, &info).ok());
  ASSERT_EQ(info.statistics().history().points_size(), 3);

  const std::string shown = CliOk({"models", "show", id, "--history"});
  EXPECT_TRUE(
      std::regex_search(shown, std::regex("trained       12 samples; last loss [0-9.e+-]+ at "
                                          "20[0-9-]+ [0-9:]+ UTC\n")))
      << shown;
  EXPECT_TRUE(std::regex_search(shown, std::regex("rate          [0-9.]+ steps/s, [0-9]+ "
                                                  "samples/s \\(last minute\\)\n")))
      << shown;
  EXPECT_TRUE(std::regex_search(shown, std::regex("history\nSTEP +LOSS +accuracy +TIME\n")))
      << shown;
  for (const v1::TrainingPoint& point : info.statistics().history().points()) {
    char loss[32];
    std::snprintf(loss, sizeof loss, "%g", point.loss());
    EXPECT_TRUE(std::regex_search(
        shown, std::regex("\n" + std::to_string(point.step()) + " +" + loss + " ")))
        << point.step() << " " << loss << "\n"
        << shown;
  }
  const nlohmann::json json =
      nlohmann::json::parse(CliOk({"models", "show", id, "--json", "--history"}));
  const nlohmann::json& statistics = json["statistics"];
  EXPECT_EQ(statistics["samples"], 12);
  EXPECT_EQ(statistics["last_loss"].get<double>(), info.statistics().last_loss());
  ASSERT_EQ(statistics["history"]["points"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const nlohmann::json& point = statistics["history"]["points"][i];
    EXPECT_EQ(point["step"], i + 1);
    EXPECT_EQ(point["loss"].get<double>(), info.statistics().history().points(i).loss());
    EXPECT_EQ(point["metrics"][0].get<double>(), info.statistics().history().points(i).metrics(0));
  }
  EXPECT_FALSE(
      nlohmann::json::parse(CliOk({"models", "show", id, "--json"}))["statistics"].contains(
          "history"));
}

TEST_F(CliCommandsTest, UnknownModelIsOneNotFoundLine) {
  const CliResult result = Cli({"models", "show", "m-1"});
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_TRUE(std::regex_match(
      result.err, std::regex("backflow: models show m-1: NOT_FOUND: [^\n]*m-1[^\n]*\n")))
      << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_NE(Cli({"checkpoint", "save", "m-1"}).err.find("NOT_FOUND"), std::string::npos);
  EXPECT_NE(Cli({"params", "get", "m-1"}).err.find("NOT_FOUND"), std::string::npos);
}

TEST_F(CliCommandsTest, UnreachableServerIsUnavailable) {
  const std::string address = "127.0.0.1:" + std::to_string(UnusedPort());
  const auto start = std::chrono::steady_clock::now();
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"models", "list"}, {"health"}}) {
    std::vector<std::string> args = {"--server", address, "--timeout", "20"};
    args.insert(args.end(), command.begin(), command.end());
    const CliResult result = RunCli(args);
    EXPECT_EQ(result.exit_code, 1) << result;
    EXPECT_EQ(result.err, "backflow: cannot reach " + address +
                              ": connection refused (is backflow-server running there? `make run` "
                              "starts one on 127.0.0.1:50051)\n");
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST_F(CliCommandsTest, AddressesAndCommandsThatAreAlmostRight) {
  const CliResult url = RunCli({"--server", "http://127.0.0.1:50051", "health"});
  EXPECT_EQ(url.exit_code, 2) << url;
  EXPECT_TRUE(
      url.err.starts_with("backflow health: --server: 'http://127.0.0.1:50051' is a URL; "
                          "give HOST:PORT without a scheme ('127.0.0.1:50051')\n"))
      << url.err;
  const CliResult port = RunCli({"health", "--server", "127.0.0.1:65536"});
  EXPECT_EQ(port.exit_code, 2) << port;
  EXPECT_NE(port.err.find("'127.0.0.1:65536': the port must be a number from 0 to 65535"),
            std::string::npos)
      << port.err;
  const CliResult command = RunCli({"modles", "list"});
  EXPECT_EQ(command.exit_code, 2) << command;
  EXPECT_TRUE(command.err.starts_with("backflow: unknown command 'modles'; did you mean 'models'?"))
      << command.err;
  const CliResult sub = RunCli({"models", "shwo", "m-1"});
  EXPECT_EQ(sub.exit_code, 2) << sub;
  EXPECT_NE(sub.err.find("unknown subcommand 'shwo' (one of: create, export, list, show, delete); "
                         "did you mean 'show'?"),
            std::string::npos)
      << sub.err;
}

TEST_F(CliCommandsTest, ParamsGetWritesNpyFilesEqualToGetParameters) {
  const std::string id = CreateModel("lenet5", {"--seed", "11"});
  const CliResult result = Cli({"params", "get", id, "--out", File("all")});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(result.out.starts_with("step 0\n")) << result.out;
  const std::map<std::string, Tensor> expected = Parameters(id);
  ASSERT_EQ(expected.size(), 10u);
  for (const auto& [name, tensor] : expected) {
    StatusOr<Tensor> file = ReadNpy(File("all/" + name + ".npy"));
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_TRUE(BitwiseEqual(*file, tensor)) << name;
  }
  ASSERT_EQ(CliOk({"params", "get", id, "--name", "f7_b", "--name", "c1_w", "--out", File("two")})
                    .size() > 0,
            true);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(File("two")), {}), 2);
  EXPECT_TRUE(ReadNpy(File("two/c1_w.npy")).ok());
  EXPECT_NE(Cli({"params", "get", id, "--name", "nope"}).err.find("NOT_FOUND"), std::string::npos);
}

TEST_F(CliCommandsTest, ParamsSetFromNpyFilesRoundTrips) {
  const std::string id = CreateModel("lenet5");
  std::vector<double> bias(10), weights(6 * 25);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.25 * static_cast<double>(i) - 1;
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = 1.0 / static_cast<double>(i + 1);
  // float64 in the file for a float32 model: the CLI casts to the model's dtype.
  ASSERT_TRUE(
      WriteNpy(File("f7_b.npy"), Tensor::FromValues(DType::kFloat64, Shape{10}, bias)).ok());
  const Tensor c1_w = Tensor::FromValues(DType::kFloat32, Shape{6, 1, 5, 5}, weights);
  ASSERT_TRUE(WriteNpy(File("c1_w.npy"), c1_w).ok());
  EXPECT_EQ(CliOk({"params", "set", id, "f7_b=" + File("f7_b.npy"), "c1_w=" + File("c1_w.npy"),
                   "--if-step", "0"}),
            "set 2 parameters of " + id + " at step 0\n");
  std::map<std::string, Tensor> now = Parameters(id);
  EXPECT_TRUE(BitwiseEqual(now["c1_w"], c1_w));
  EXPECT_TRUE(BitwiseEqual(now["f7_b"], Tensor::FromValues(DType::kFloat32, Shape{10}, bias)));
  EXPECT_TRUE(Cli({"params", "get", id, "--name", "f7_b", "--out", File("back")}).exit_code == 0);
  EXPECT_TRUE(BitwiseEqual(*ReadNpy(File("back/f7_b.npy")), now["f7_b"]));

  const CliResult stale = Cli({"params", "set", id, "f7_b=" + File("f7_b.npy"), "--if-step", "5"});
  EXPECT_EQ(stale.exit_code, 1) << stale;
  EXPECT_NE(stale.err.find("FAILED_PRECONDITION"), std::string::npos) << stale.err;
  const CliResult shape = Cli({"params", "set", id, "c1_b=" + File("f7_b.npy")});
  EXPECT_EQ(shape.exit_code, 1) << shape;
  EXPECT_NE(shape.err.find("INVALID_ARGUMENT"), std::string::npos) << shape.err;
  const CliResult missing = Cli({"params", "set", id, "f7_b=" + File("missing.npy")});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_NE(missing.err.find("missing.npy"), std::string::npos) << missing.err;
}

TEST_F(CliCommandsTest, CheckpointSaveAndRestore) {
  const std::string id = CreateModel("mlp_tanh", {"--momentum", "0.5"});
  const CliResult none = Cli({"checkpoint", "restore", id});
  EXPECT_EQ(none.exit_code, 1) << none;
  EXPECT_NE(none.err.find("FAILED_PRECONDITION"), std::string::npos) << none.err;

  ASSERT_EQ(TrainOneStep(id), 1);
  const std::string saved = CliOk({"checkpoint", "save", id});
  std::smatch match;
  ASSERT_TRUE(
      std::regex_match(saved, match, std::regex("saved (.+) at step 1 \\((\\d+) bytes\\)\n")))
      << saved;
  EXPECT_EQ(match[1], id);
  EXPECT_GT(std::stoll(match[2]), 203530 * 4);  // the float32 parameters alone
  const std::map<std::string, Tensor> at_save = Parameters(id);
  ASSERT_EQ(TrainOneStep(id), 2);
  EXPECT_FALSE(BitwiseEqual(Parameters(id)["w1"], at_save.at("w1")));

  EXPECT_EQ(CliOk({"checkpoint", "restore", id}), "restored " + id + " to step 1\n");
  const std::map<std::string, Tensor> restored = Parameters(id);
  for (const auto& [name, tensor] : at_save) EXPECT_TRUE(BitwiseEqual(restored.at(name), tensor));
  EXPECT_NE(CliOk({"models", "show", id}).find("step          1 (checkpoint at step 1)"),
            std::string::npos);
}

TEST_F(CliCommandsTest, InferFromNpyMatchesTheRpc) {
  const std::string id = CreateModel("lenet5", {"--seed", "5"});
  std::vector<double> pixels(3 * 784);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<double>(i % 29) / 29;
  const Tensor images = Tensor::FromValues(DType::kFloat32, Shape{3, 1, 28, 28}, pixels);
  ASSERT_TRUE(WriteNpy(File("images.npy"), images).ok());
  v1::InferRequest request;
  request.set_model_id(id);
  request.add_outputs("logits");
  TensorToProto(images, &(*request.mutable_inputs())["images"]);
  v1::InferResponse response;
  ASSERT_TRUE(stub_->Infer(Deadline().get(), request, &response).ok());
  const Tensor logits = *TensorFromProto(response.outputs().at("logits"), "logits", 1 << 20);

  const nlohmann::json json = LastJsonLine(CliOk(
      {"infer", id, "--input", "images=" + File("images.npy"), "--output", "logits", "--json"}));
  ASSERT_FALSE(json.is_discarded());
  EXPECT_EQ(json["step"], 0);
  EXPECT_EQ(json["outputs"]["logits"]["shape"], nlohmann::json({3, 10}));
  EXPECT_EQ(json["outputs"]["logits"]["values"].get<std::vector<double>>(), logits.ToDoubles());

  const std::string text = CliOk({"infer", id, "--input", "images=" + File("images.npy")});
  EXPECT_TRUE(text.starts_with("step 0\nlogits [3, 10]: ")) << text;
  EXPECT_TRUE(Cli({"infer", id, "--input", "images=" + File("images.npy"), "--out", File("out")})
                  .exit_code == 0);
  StatusOr<Tensor> written = ReadNpy(File("out/logits.npy"));
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_TRUE(BitwiseEqual(*written, logits));

  const CliResult bad =
      Cli({"infer", id, "--input", "images=" + File("images.npy"), "--output", "nope"});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_TRUE(bad.err.starts_with("backflow: infer " + id + ": INVALID_ARGUMENT")) << bad.err;
}

// --top-k: the softmax of the RPC's logits, ranked, with Fashion-MNIST's class names.
TEST_F(CliCommandsTest, InferTopKRanksTheSoftmaxOfTheLogits) {
  const std::string id = CreateModel("lenet5", {"--seed", "7"});
  std::vector<double> pixels(2 * 784);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<double>(i % 31) / 31;
  const Tensor images = Tensor::FromValues(DType::kFloat32, Shape{2, 1, 28, 28}, pixels);
  ASSERT_TRUE(WriteNpy(File("topk.npy"), images).ok());
  const std::vector<std::string> infer = {"infer", id, "--input", "images=" + File("topk.npy"),
                                          "--output", "logits", "--top-k", "3", "--labels",
                                          Source("models/fashion_mnist_labels.txt")};
  std::vector<std::string> json_args = infer;
  json_args.push_back("--json");
  const nlohmann::json json = LastJsonLine(CliOk(json_args));
  ASSERT_FALSE(json.is_discarded());
  const std::vector<double> logits = json["outputs"]["logits"]["values"].get<std::vector<double>>();
  ASSERT_EQ(logits.size(), 20u);
  const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  for (size_t row = 0; row < 2; ++row) {
    std::vector<double> p(logits.begin() + row * 10, logits.begin() + row * 10 + 10);
    const double largest = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (double& v : p) sum += (v = std::exp(v - largest));
    std::vector<size_t> order = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    const nlohmann::json& ranked = json["outputs"]["logits"]["top_k"][row];
    ASSERT_EQ(ranked.size(), 3u) << ranked;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(ranked[i]["class"], order[i]);
      EXPECT_NEAR(ranked[i]["probability"].get<double>(), p[order[i]] / sum, 1e-12);
      EXPECT_EQ(ranked[i]["label"], names[order[i]]);
    }
  }
  const std::string text = CliOk(infer);
  EXPECT_TRUE(text.starts_with("step 0\nlogits row 0:\n  1. 0.")) << text;
  EXPECT_NE(text.find("logits row 1:\n"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 9) << text;

  const CliResult zero =
      Cli({"infer", id, "--input", "images=" + File("topk.npy"), "--top-k", "0"});
  EXPECT_EQ(zero.exit_code, 2) << zero;
  EXPECT_NE(zero.err.find("--top-k takes a count of classes (1 or more), not '0'"),
            std::string::npos)
      << zero.err;
}

}  // namespace
}  // namespace backflow::testing
