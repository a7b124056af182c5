// `backflow checkpoint download | upload` as child processes against two backflow-server
// children: the .npy files hold what GetParameters returns, checkpoint.json the header, and a
// model uploaded to the second server continues training exactly as the first.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "backflow/v1/service.grpc.pb.h"
#include "clients/cli/npy.h"
#include "engine/ir/tensor_proto.h"
#include "tests/clients/cli_fixture.h"
#include "tests/clients/image_step.h"

namespace backflow::testing {
namespace {

namespace fs = std::filesystem;

class CliCheckpointTransferTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
    files_ = std::make_unique<ProcessTempDir>();
  }
  std::string File(const std::string& name) const {
    return (fs::path(files_->path()) / name).string();
  }
  static std::string Trimmed(std::string out) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  static std::map<std::string, std::string> ParameterBytes(v1::Backflow::Stub& stub,
                                                           const std::string& id) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    EXPECT_TRUE(stub.GetParameters(Deadline().get(), request, &response).ok());
    std::map<std::string, std::string> bytes;
    for (const auto& [name, tensor] : response.parameters()) bytes[name] = tensor.data();
    return bytes;
  }

  std::unique_ptr<v1::Backflow::Stub> stub_;
  std::unique_ptr<ProcessTempDir> files_;
};

TEST_F(CliCheckpointTransferTest, DownloadWritesNpyAndUploadMovesTheModel) {
  const std::string id = Trimmed(CliOk({"models", "create", Source("models/mlp_tanh.pbtxt"),
                                        "--momentum", "0.5", "--name", "moving"}));
  ASSERT_EQ(TrainOneImageStep(*stub_, id), 1);
  ASSERT_EQ(TrainOneImageStep(*stub_, id), 2);
  CliOk({"checkpoint", "save", id});
  const std::string out = CliOk({"checkpoint", "download", id, "--out", File("ckpt")});
  EXPECT_TRUE(std::regex_match(out, std::regex("downloaded " + id +
                                               " at step 2 to .*ckpt \\(\\d+ tensors, \\d+ "
                                               "bytes\\)\n")))
      << out;
  // Every parameter as a .npy file equal to GetParameters; the momentum slots beside them.
  const std::map<std::string, std::string> before = ParameterBytes(*stub_, id);
  ASSERT_FALSE(before.empty());
  for (const auto& [name, bytes] : before) {
    StatusOr<Tensor> file = cli::ReadNpy(File("ckpt/parameters/" + name + ".npy"));
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(file->raw()), file->byte_size()), bytes)
        << name;
    EXPECT_TRUE(fs::exists(File("ckpt/optimizer/momentum/" + name + ".npy"))) << name;
  }
  std::ifstream json_file(File("ckpt/checkpoint.json"));
  const nlohmann::json header = nlohmann::json::parse(json_file);
  EXPECT_EQ(header["model_id"], id);
  EXPECT_EQ(header["step"], "2");  // int64 in protobuf JSON is a string
  EXPECT_EQ(header["model"]["name"], "moving");
  EXPECT_EQ(header["tensors"].size(), 2 * before.size());

  // A second server takes the directory; both train on alike.
  ProcessTempDir other_dir;
  ServerProcess other;
  other.Start(other_dir.path());
  const CliResult uploaded = RunCli({"--server", other.address(), "checkpoint", "upload",
                                     File("ckpt"), "--name", "moved"});
  ASSERT_EQ(uploaded.exit_code, 0) << uploaded;
  std::smatch match;
  ASSERT_TRUE(std::regex_match(uploaded.out, match,
                               std::regex("uploaded .*ckpt as model (\\S+) at step 2\n")))
      << uploaded.out;
  const std::string copy = match[1];
  auto other_stub = v1::Backflow::NewStub(ConnectTo(other.address()));
  EXPECT_EQ(ParameterBytes(*other_stub, copy), before);
  EXPECT_EQ(TrainOneImageStep(*other_stub, copy), 3);
  EXPECT_EQ(TrainOneImageStep(*stub_, id), 3);
  EXPECT_EQ(ParameterBytes(*other_stub, copy), ParameterBytes(*stub_, id));
  other.Stop(SIGTERM, std::chrono::seconds(30));
}

TEST_F(CliCheckpointTransferTest, ChangedOrMissingFilesAndTakenDirectoriesFail) {
  const std::string id =
      Trimmed(CliOk({"models", "create", Source("models/mlp_tanh.pbtxt")}));
  CliOk({"checkpoint", "save", id});
  CliOk({"checkpoint", "download", id, "--out", File("a")});
  const CliResult again = Cli({"checkpoint", "download", id, "--out", File("a")});
  EXPECT_EQ(again.exit_code, 1) << again;
  EXPECT_NE(again.err.find("already holds a checkpoint"), std::string::npos) << again.err;

  // A parameter file of another shape is refused before anything is sent.
  const fs::path first = *fs::directory_iterator(File("a/parameters"));
  ASSERT_TRUE(cli::WriteNpy(first.string(), Tensor(DType::kFloat32, Shape{3})).ok());
  const CliResult reshaped = Cli({"checkpoint", "upload", File("a")});
  EXPECT_EQ(reshaped.exit_code, 1) << reshaped;
  EXPECT_NE(reshaped.err.find("holds float32[3]"), std::string::npos) << reshaped.err;
  fs::remove(first);
  const CliResult missing = Cli({"checkpoint", "upload", File("a")});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos) << missing.err;
  const CliResult no_header = Cli({"checkpoint", "upload", File("nothing")});
  EXPECT_EQ(no_header.exit_code, 1) << no_header;
  EXPECT_NE(no_header.err.find("checkpoint.json: cannot open"), std::string::npos)
      << no_header.err;
  const CliResult none = Cli({"checkpoint", "download", "m-nope", "--out", File("b")});
  EXPECT_EQ(none.exit_code, 1) << none;
  EXPECT_NE(none.err.find("NOT_FOUND"), std::string::npos) << none.err;
  const CliResult usage = Cli({"checkpoint", "download", id});
  EXPECT_EQ(usage.exit_code, 2) << usage;
}

}  // namespace
}  // namespace backflow::testing
