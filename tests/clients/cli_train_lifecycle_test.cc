// What `backflow train` leaves on the server: the model it creates is deleted at the end unless
// --keep; a graph that cannot train creates nothing; Ctrl-C ends the stream at a batch, saves a
// checkpoint, keeps the model, prints how to resume and exits 130.
#include <signal.h>

#include <fstream>
#include <iterator>
#include <regex>

#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

class CliTrainLifecycleTest : public CliTest {
 protected:
  static std::string Data(const std::string& name) { return Source("tests/clients/data/" + name); }
  static nlohmann::json Models() {
    return nlohmann::json::parse(CliOk({"models", "list", "--json"}));
  }
  static std::vector<std::string> BlobsTraining() {
    return {"train",
            "--model",
            Data("blob_mlp.pbtxt"),
            "--data",
            Data("blobs_train.npz"),
            "--epochs",
            "1",
            "--batch",
            "16",
            "--json"};
  }
};

TEST_F(CliTrainLifecycleTest, DeletesTheModelItCreatedUnlessKept) {
  const size_t before = Models().size();
  const CliResult deleted = Cli(BlobsTraining());
  ASSERT_EQ(deleted.exit_code, 0) << deleted;
  const std::string first = LastJsonLine(deleted.out)["model_id"];
  EXPECT_NE(deleted.err.find("train: deleted model " + first +
                             " (add --keep to keep what it "
                             "trained)"),
            std::string::npos)
      << deleted.err;
  EXPECT_EQ(Models().size(), before);

  std::vector<std::string> keep = BlobsTraining();
  keep.push_back("--keep");
  const CliResult kept = Cli(keep);
  ASSERT_EQ(kept.exit_code, 0) << kept;
  const std::string id = LastJsonLine(kept.out)["model_id"];
  EXPECT_NE(kept.err.find("train: kept model " + id + " (continue with --model-id " + id + ")"),
            std::string::npos)
      << kept.err;
  EXPECT_EQ(nlohmann::json::parse(CliOk({"models", "show", id, "--json"}))["step"], 30);

  // Continuing a model by id never deletes it.
  const CliResult more =
      Cli({"train", "--model-id", id, "--data", Data("blobs_train.npz"), "--batch", "16"});
  ASSERT_EQ(more.exit_code, 0) << more;
  EXPECT_EQ(nlohmann::json::parse(CliOk({"models", "show", id, "--json"}))["step"], 60);
  EXPECT_EQ(Models().size(), before + 1);
}

TEST_F(CliTrainLifecycleTest, AGraphWithoutALossCreatesNoModel) {
  ProcessTempDir dir;
  const std::string graph = dir.path() + "/no_loss.pbtxt";
  {
    std::ifstream in(Data("blob_mlp.pbtxt"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text = std::regex_replace(text, std::regex("loss: \"loss\""), "");
    std::ofstream(graph) << text;
  }
  const size_t before = Models().size();
  const CliResult result = Cli({"train", "--model", graph, "--data", Data("blobs_train.npz")});
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_NE(result.err.find("no_loss.pbtxt: the graph has no loss, so it cannot train"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(Models().size(), before);
}

TEST_F(CliTrainLifecycleTest, CtrlCCheckpointsKeepsTheModelAndSaysHowToResume) {
  const std::vector<std::string> args = {
      "--server", server_->address(), "train", "--model", Source("models/lenet5.pbtxt"), "--epochs",
      "3",        "--test-limit",     "0"};
  int fds[2];
  const pid_t pid = SpawnWithPipes(BACKFLOW_BINARY, args, fds);
  ASSERT_GT(pid, 0);
  // Off a terminal the progress is a line every tenth of an epoch: wait for the first one.
  std::string out, err;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (err.find("(10%)") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd polled = {fds[1], POLLIN, 0};
    if (poll(&polled, 1, 100) > 0) {
      char buffer[4096];
      const ssize_t n = read(fds[1], buffer, sizeof buffer);
      if (n <= 0) break;
      err.append(buffer, static_cast<size_t>(n));
    }
  }
  ASSERT_NE(err.find("(10%)"), std::string::npos) << err;
  kill(pid, SIGINT);
  std::string* sinks[2] = {&out, &err};
  EXPECT_TRUE(DrainPipes(fds, sinks, std::chrono::steady_clock::now() + std::chrono::seconds(60)));
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << err;
  EXPECT_EQ(WEXITSTATUS(status), 130) << err;

  std::smatch match;
  ASSERT_TRUE(std::regex_search(
      err, match,
      std::regex("train: interrupted; model (m-[0-9a-f]+) kept at step ([0-9]+), "
                 "checkpointed\nresume with: backflow --server ([0-9.:]+) train "
                 "--model-id (m-[0-9a-f]+) --data /usr/share/datasets/fashion-mnist")))
      << err;
  EXPECT_EQ(match[1], match[4]);
  EXPECT_EQ(match[3], server_->address());
  const nlohmann::json info = nlohmann::json::parse(CliOk({"models", "show", match[1], "--json"}));
  const int64_t step = std::stoll(match[2]);
  EXPECT_GE(step, 93);  // at least the tenth of an epoch it had reported
  EXPECT_LT(step, 3 * 937);
  EXPECT_EQ(info["step"], step);
  EXPECT_EQ(info["checkpoint_step"], step);
}

}  // namespace
}  // namespace backflow::testing
