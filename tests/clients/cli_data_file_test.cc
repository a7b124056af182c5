// backflow train on a user's own data: NumPy .npz and CSV files (tests/clients/data/generate.py
// wrote them: three Gaussian clusters in 2-D, the same 480 training samples in both formats and
// 120 test samples), and the errors of bad data files.
#include "tests/clients/cli_fixture.h"

namespace backflow::testing {
namespace {

class CliDataFileTest : public CliTest {
 protected:
  static std::string Data(const std::string& name) { return Source("tests/clients/data/" + name); }
  static CliResult Train(const std::string& data, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"train",  "--model", Data("blob_mlp.pbtxt"),
                                     "--data", data,      "--epochs",
                                     "3",      "--batch", "16",
                                     "--lr",   "0.1",     "--json"};
    args.insert(args.end(), more.begin(), more.end());
    return Cli(args);
  }
  static size_t ModelCount() {
    return nlohmann::json::parse(CliOk({"models", "list", "--json"})).size();
  }
};

TEST_F(CliDataFileTest, TrainsOnNpzAndCsvAlikeAndScoresTheTestFile) {
  const CliResult npz = Train(Data("blobs_train.npz"), {"--test", Data("blobs_test.npz")});
  ASSERT_EQ(npz.exit_code, 0) << npz;
  const nlohmann::json summary = LastJsonLine(npz.out);
  EXPECT_EQ(summary["steps"], 90);  // 3 epochs of 480 / 16
  EXPECT_EQ(summary["test_samples"], 120);
  EXPECT_GE(summary["test_accuracy"].get<double>(), 0.95) << npz.out;

  // The CSV holds the same samples (float32 written exactly), so training is the same.
  const CliResult csv = Train(Data("blobs_train.csv"), {"--test", Data("blobs_test.npz")});
  ASSERT_EQ(csv.exit_code, 0) << csv;
  EXPECT_EQ(LastJsonLine(csv.out)["final_loss"], summary["final_loss"]);
  EXPECT_EQ(LastJsonLine(csv.out)["test_accuracy"], summary["test_accuracy"]);

  // Without --test nothing is scored; --limit keeps the first samples.
  const CliResult limited = Train(Data("blobs_train.npz"), {"--limit", "64"});
  ASSERT_EQ(limited.exit_code, 0) << limited;
  EXPECT_EQ(LastJsonLine(limited.out)["steps"], 12);
  EXPECT_TRUE(LastJsonLine(limited.out)["test_accuracy"].is_null());
}

TEST_F(CliDataFileTest, BadDataFilesFailBeforeAnyModelIsCreated) {
  const size_t models = ModelCount();
  const CliResult missing = Train(Data("missing.npz"));
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_NE(missing.err.find("missing.npz: no such file"), std::string::npos) << missing.err;

  const CliResult three = Train(Data("three.npz"));
  EXPECT_EQ(three.exit_code, 1) << three;
  EXPECT_NE(three.err.find("holds a [3], b [3], c [3, 2]: train needs two arrays"),
            std::string::npos)
      << three.err;

  const CliResult column = Train(Data("blobs_train.csv"), {"--label-column", "z"});
  EXPECT_EQ(column.exit_code, 1) << column;
  EXPECT_NE(column.err.find("no label column 'z' (3 columns)"), std::string::npos) << column.err;

  const CliResult test_dir = Train(Data("blobs_train.npz"), {"--test", "/tmp"});
  EXPECT_EQ(test_dir.exit_code, 2) << test_dir;
  EXPECT_NE(test_dir.err.find("--test takes a .npz or .csv file, not '/tmp'"), std::string::npos)
      << test_dir.err;
  EXPECT_EQ(ModelCount(), models);
}

}  // namespace
}  // namespace backflow::testing
