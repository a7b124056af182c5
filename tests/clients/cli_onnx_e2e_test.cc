// ONNX end to end, as a PyTorch user runs it: PyTorch's ResNet-style CNN exported for training
// (tests/clients/onnx/generate.py), trained on Fashion-MNIST through `backflow train --onnx`,
// reaches the test accuracy PyTorch reaches with the same recipe; `backflow models export`
// writes ONNX that onnx.checker accepts (Debian's python3-onnx) and that, created as a model
// again, answers Infer with the same logits, bit for bit.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>

#include "backflow/v1/service.grpc.pb.h"
#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

#if defined(BACKFLOW_TSAN) || defined(__SANITIZE_ADDRESS__)
constexpr const char* kImages = "12800";  // sanitizers: a fifth of the epoch
constexpr double kSlack = 0.25;
#else
constexpr const char* kImages = "60000";  // the recipe: one full epoch
constexpr double kSlack = 0.02;
#endif

v1::InferResponse InferOrFail(v1::Backflow::Stub& stub, const std::string& id,
                              const v1::Tensor& images) {
  v1::InferRequest request;
  request.set_model_id(id);
  (*request.mutable_inputs())["images"] = images;
  request.add_outputs("logits");
  v1::InferResponse response;
  grpc::ClientContext context;
  const grpc::Status status = stub.Infer(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

// 16 images [16, 1, 28, 28] of a smooth, deterministic pattern in [0, 1).
v1::Tensor Images() {
  v1::Tensor t;
  for (int64_t d : {16, 1, 28, 28}) t.add_shape(d);
  t.set_dtype(v1::FLOAT32);
  std::vector<float> values(16 * 28 * 28);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>((i * 37) % 256) / 256.0f;
  t.set_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  return t;
}

class CliOnnxEndToEndTest : public CliTest {};

TEST_F(CliOnnxEndToEndTest, TrainedLikePyTorchExportedCheckedAndReimportedBitwise) {
  const nlohmann::json recipe =
      nlohmann::json::parse(std::ifstream(Source("tests/clients/onnx/torch_recipe.json")));
  const std::vector<double> torch_accuracy = recipe["test_accuracy"];
  // clang-format off
  const CliResult trained = Cli({"train", "--onnx", Source("tests/clients/onnx/resnet_fmnist.onnx"),
                                 "--loss", "softmax_cross_entropy", "--data", "fashion-mnist",
                                 "--epochs", "1", "--batch", "64", "--limit", kImages,
                                 "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
                                 "--seed", "1", "--json", "--keep"},
                                std::chrono::seconds(900));
  // clang-format on
  ASSERT_EQ(trained.exit_code, 0) << trained;
  const nlohmann::json summary = LastJsonLine(trained.out);
  ASSERT_FALSE(summary.is_discarded()) << trained;
  const double accuracy = summary["test_accuracy"];
  const double worst_torch = *std::min_element(torch_accuracy.begin(), torch_accuracy.end());
  EXPECT_GE(accuracy, worst_torch - kSlack)
      << "PyTorch reached " << nlohmann::json(torch_accuracy).dump() << " with the same recipe";
  const std::string id = summary["model_id"];

  ProcessTempDir dir;
  const std::string exported = dir.path() + "/trained.onnx";
  CliOk({"models", "export", id, "--onnx", exported});
  const CliResult checked = RunCommand(
      "/usr/bin/python3",
      {"-c", "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)",
       exported},
      std::chrono::seconds(60));
  EXPECT_EQ(checked.exit_code, 0) << checked;

  std::string again = CliOk({"models", "create", "--onnx", exported});
  again.erase(again.find_last_not_of("\n") + 1);
  auto stub = v1::Backflow::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  const v1::Tensor images = Images();
  const v1::InferResponse a = InferOrFail(*stub, id, images);
  const v1::InferResponse b = InferOrFail(*stub, again, images);
  ASSERT_TRUE(a.outputs().count("logits") && b.outputs().count("logits"));
  EXPECT_EQ(a.outputs().at("logits").data().size(), 16u * 10 * 4);
  EXPECT_TRUE(a.outputs().at("logits").data() == b.outputs().at("logits").data())
      << "the re-imported export answers with different logits";
}

}  // namespace
}  // namespace backflow::testing
