// `backflow train` end to end on the first 6400 Fashion-MNIST images: 2 epochs of 100 steps of
// LeNet-5 over the Train stream (half that under ThreadSanitizer, where every step is slow), the
// per-step CSV, the per-epoch lines and the final JSON; then continuing the same model with
// --model-id, a model with int64 labels, and the errors of a bad data dir or model.
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

struct CsvRow {
  int64_t step;
  int64_t epoch;
  double loss;
  double accuracy;
};

std::vector<CsvRow> ReadCsv(const std::string& path, std::string* header) {
  std::ifstream in(path);
  std::getline(in, *header);
  std::vector<CsvRow> rows;
  std::string line;
  while (std::getline(in, line)) {
    CsvRow row{};
    char comma[3];
    std::istringstream fields(line);
    fields >> row.step >> comma[0] >> row.epoch >> comma[1] >> row.loss >> comma[2] >> row.accuracy;
    EXPECT_TRUE(fields && comma[0] == ',' && comma[1] == ',' && comma[2] == ',') << line;
    rows.push_back(row);
  }
  return rows;
}

double MeanLoss(std::span<const CsvRow> rows) {
  double sum = 0;
  for (const CsvRow& row : rows) sum += row.loss;
  return sum / static_cast<double>(rows.size());
}

#ifdef BACKFLOW_TSAN
constexpr int64_t kSteps = 50;  // per epoch
#else
constexpr int64_t kSteps = 100;
#endif

class CliTrainTest : public CliTest {};

TEST_F(CliTrainTest, TrainsLeNetAndReportsCsvLinesAndJson) {
  ProcessTempDir dir;
  const std::string csv = dir.path() + "/steps.csv";
  const std::string lenet = Source("models/lenet5.pbtxt"), images = std::to_string(kSteps * 64);
  // clang-format off
  const CliResult result = Cli({"train", "--model", lenet, "--data", "fashion-mnist",
                                "--epochs", "2", "--batch", "64", "--limit", images,
                                "--test-limit", "1000", "--optimizer", "sgd", "--lr", "0.01",
                                "--momentum", "0.9", "--seed", "1", "--csv", csv, "--json", "--keep"},
                               std::chrono::seconds(120));
  // clang-format on
  ASSERT_EQ(result.exit_code, 0) << result;

  std::string header;
  const std::vector<CsvRow> rows = ReadCsv(csv, &header);
  EXPECT_EQ(header, "step,epoch,loss,accuracy");
  ASSERT_EQ(rows.size(), static_cast<size_t>(2 * kSteps));
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].step, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(rows[i].epoch, static_cast<int64_t>(i) < kSteps ? 1 : 2);
    EXPECT_TRUE(std::isfinite(rows[i].loss) && rows[i].loss >= 0) << rows[i].loss;
    EXPECT_TRUE(rows[i].accuracy >= 0 && rows[i].accuracy <= 1) << rows[i].accuracy;
  }
  const double first = MeanLoss(std::span(rows).first(20));
  const double last = MeanLoss(std::span(rows).last(20));
  EXPECT_LT(last, 0.6 * first) << "the loss must fall: first 20 steps " << first << ", last 20 "
                               << last;

  const nlohmann::json summary = LastJsonLine(result.out);
  ASSERT_FALSE(summary.is_discarded()) << result.out;
  const std::string id = summary["model_id"];
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(summary["epochs"], 2);
  EXPECT_EQ(summary["steps"], 2 * kSteps);
  // final_loss: the mean of the last epoch's last 100 steps, i.e. all of epoch 2 here.
  EXPECT_NEAR(summary["final_loss"].get<double>(), MeanLoss(std::span(rows).last(kSteps)), 1e-6);
  EXPECT_GT(summary["test_accuracy"].get<double>(), 0.5);
  EXPECT_LE(summary["test_accuracy"].get<double>(), 1.0);
  EXPECT_GT(summary["samples_per_s"].get<double>(), 0);
  EXPECT_GT(summary["seconds"].get<double>(), 0);
  EXPECT_EQ(summary["test_samples"], 1000);

  EXPECT_TRUE(std::regex_search(
      result.out, std::regex("epoch 1: loss [0-9.]+, test accuracy [0-9.]+%, [0-9]+ samples/s\n"
                             "epoch 2: loss [0-9.]+, test accuracy [0-9.]+%, [0-9]+ samples/s\n")))
      << result.out;
  // stderr is not a terminal here: a plain progress line every tenth of an epoch.
  const std::string steps = std::to_string(kSteps);
  EXPECT_NE(result.err.find("epoch 1/2: step " + std::to_string(kSteps / 10) + "/" + steps +
                            " (10%), loss "),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("epoch 2/2: step " + steps + "/" + steps + " (100%)"),
            std::string::npos)
      << result.err;

  // Continue the same model for one short epoch: its step goes on from there.
  const CliResult more =
      Cli({"train", "--model-id", id, "--limit", "640", "--test-limit", "0", "--json"});
  ASSERT_EQ(more.exit_code, 0) << more;
  EXPECT_EQ(LastJsonLine(more.out)["steps"], 10);
  EXPECT_TRUE(LastJsonLine(more.out)["test_accuracy"].is_null());
  EXPECT_EQ(nlohmann::json::parse(CliOk({"models", "show", id, "--json"}))["step"],
            2 * kSteps + 10);
}

// ResNet's labels placeholder is int64 (as an ONNX model's labels are): train sends them so.
TEST_F(CliTrainTest, TrainsAModelWithInt64Labels) {
  const CliResult result = Cli({"train", "--model", Source("models/resnet_fmnist.pbtxt"), "--limit",
                                "128", "--batch", "32", "--test-limit", "64", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const nlohmann::json summary = LastJsonLine(result.out);
  EXPECT_EQ(summary["steps"], 4);
  EXPECT_EQ(summary["test_samples"], 64);
  EXPECT_TRUE(std::isfinite(summary["final_loss"].get<double>())) << result.out;
}

TEST_F(CliTrainTest, ReportsBadDataModelsAndIds) {
  const CliResult no_data =
      Cli({"train", "--model", Source("models/lenet5.pbtxt"), "--data", "/nonexistent-dir"});
  EXPECT_EQ(no_data.exit_code, 1) << no_data;
  EXPECT_TRUE(no_data.err.starts_with("backflow: train: ")) << no_data.err;
  EXPECT_NE(no_data.err.find("/nonexistent-dir"), std::string::npos) << no_data.err;

  const CliResult no_model = Cli({"train", "--model-id", "m-none", "--limit", "64"});
  EXPECT_EQ(no_model.exit_code, 1) << no_model;
  EXPECT_NE(no_model.err.find("NOT_FOUND"), std::string::npos) << no_model.err;

  const CliResult not_images = Cli({"train", "--model", Source("models/seeds/staged.pbtxt"),
                                    "--limit", "64", "--test-limit", "0"});
  EXPECT_EQ(not_images.exit_code, 1) << not_images;
  EXPECT_NE(not_images.err.find("labels"), std::string::npos) << not_images.err;

  const CliResult both =
      Cli({"train", "--model", Source("models/lenet5.pbtxt"), "--model-id", "m-1"});
  EXPECT_EQ(both.exit_code, 2) << both;
}

}  // namespace
}  // namespace backflow::testing
