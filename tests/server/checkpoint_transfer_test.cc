// DownloadCheckpoint and UploadCheckpoint (Note [Checkpoint streams] in
// server/checkpoint_transfer.h): a model moved to a second server keeps its parameters, running
// state and optimizer state bitwise, so both go on training alike; the chunks are bounded; and
// an upload that does not fit its model creates nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/checkpoint_stream_client.h"
#include "tests/server/server_fixture.h"

namespace backflow::testing {
namespace {

namespace fs = std::filesystem;

class CheckpointTransferTest : public ServerTest {
 protected:
  void Configure(server::ServerConfig& config) override {
    config.autosave.every_steps = 0;
    config.autosave.every_seconds = std::chrono::seconds(0);
    config.stream_idle_timeout = std::chrono::seconds(1);
  }

  std::string CreateAdam() {
    return CreateModel(*stub_, ModelRequest(TinyMlpGraph(), AdamSpec(0.01), 3)).id();
  }
  void Step(v1::Backflow::Stub& stub, const std::string& id, uint64_t seed,
            v1::TrainStepResponse* response) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    TinyBatch(seed).ToWire(request.mutable_batch());
    request.set_return_parameters(true);
    ASSERT_TRUE(IsOk(stub.TrainStep(Context().get(), request, response)));
  }
  grpc::Status Save(const std::string& id, const std::string& name = "") {
    v1::SaveCheckpointRequest request;
    request.set_model_id(id);
    request.set_name(name);
    v1::SaveCheckpointResponse response;
    return stub_->SaveCheckpoint(Context().get(), request, &response);
  }
  // A model at step 3 with a checkpoint there, downloaded.
  DownloadedCheckpoint TrainedAndDownloaded(std::string* id) {
    *id = CreateAdam();
    v1::TrainStepResponse response;
    for (uint64_t seed = 1; seed <= 3; ++seed) Step(*stub_, *id, seed, &response);
    EXPECT_TRUE(IsOk(Save(*id)));
    DownloadedCheckpoint downloaded;
    EXPECT_TRUE(IsOk(DownloadCheckpoint(*stub_, *id, &downloaded)));
    return downloaded;
  }
  size_t ModelDirectories() {
    size_t count = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(data_dir_.path()) / "models")) {
      if (entry.is_directory()) ++count;
    }
    return count;
  }
};

TEST_F(CheckpointTransferTest, AModelMovedToASecondServerTrainsOnIdentically) {
  std::string id;
  const DownloadedCheckpoint downloaded = TrainedAndDownloaded(&id);
  const v1::CheckpointHeader& header = downloaded.header;
  EXPECT_TRUE(downloaded.header_first);
  EXPECT_EQ(header.model_id(), id);
  EXPECT_EQ(header.step(), 3);
  EXPECT_EQ(header.optimizer_steps(), 3);
  EXPECT_TRUE(header.checkpoint().current());
  EXPECT_EQ(header.model().optimizer().kind(), v1::OptimizerSpec::ADAM);
  // 4 parameters and Adam's two moments of each, sorted by slot then name.
  ASSERT_EQ(header.tensors_size(), 12);
  EXPECT_EQ(header.tensors(0).slot(), v1::CheckpointTensor::PARAMETER);
  EXPECT_EQ(header.tensors(0).name(), "b1");
  EXPECT_EQ(header.tensors(4).name(), "adam_m/b1");
  int64_t total = 0;
  for (const v1::CheckpointTensor& tensor : header.tensors()) total += tensor.bytes();
  EXPECT_EQ(total, kTinyMlpParameterCount * 4 * 3);
  EXPECT_EQ(static_cast<int64_t>(downloaded.data.size()), total);
  // The parameters' bytes come first, in the header's order.
  const v1::GetParametersResponse before = GetParameters(*stub_, id);
  EXPECT_EQ(downloaded.data.substr(0, static_cast<size_t>(header.tensors(0).bytes())),
            before.parameters().at(header.tensors(0).name()).data());

  TempDir other_dir;
  std::unique_ptr<server::Server> other = StartServer(TestConfig(other_dir.path()));
  ASSERT_NE(other, nullptr);
  auto other_stub = v1::Backflow::NewStub(Connect(other->address()));
  v1::ModelInfo info;
  // Odd chunk sizes cross tensor boundaries.
  ASSERT_TRUE(IsOk(UploadCheckpoint(*other_stub, header, downloaded.data, &info, 1000)));
  EXPECT_EQ(info.step(), 3);
  EXPECT_EQ(info.checkpoint_step(), 3);
  EXPECT_EQ(TensorBytes(GetParameters(*other_stub, info.id()).parameters()),
            TensorBytes(before.parameters()));
  // Adam's moments and step count came along: the next steps agree bitwise.
  for (uint64_t seed = 4; seed <= 5; ++seed) {
    v1::TrainStepResponse here, there;
    Step(*stub_, id, seed, &here);
    Step(*other_stub, info.id(), seed, &there);
    EXPECT_EQ(here.step(), there.step());
    EXPECT_EQ(here.loss(), there.loss());
    EXPECT_EQ(TensorBytes(here.parameters()), TensorBytes(there.parameters()));
  }
  // The uploaded model is stored like any other: a restart finds it (at step 5, which the
  // shutdown checkpointed).
  other_stub.reset();
  ASSERT_TRUE(other->Shutdown().ok());
  other.reset();  // gives the data directory's lock back
  other = StartServer(TestConfig(other_dir.path()));
  ASSERT_NE(other, nullptr);
  other_stub = v1::Backflow::NewStub(Connect(other->address()));
  EXPECT_EQ(GetModelInfo(*other_stub, info.id()).step(), 5);
  ASSERT_TRUE(other->Shutdown().ok());
}

TEST_F(CheckpointTransferTest, DownloadPicksByNameOrStepAndSaysWhatIsMissing) {
  const std::string id = CreateAdam();
  DownloadedCheckpoint none;
  EXPECT_TRUE(HasStatus(DownloadCheckpoint(*stub_, id, &none),
                        grpc::StatusCode::FAILED_PRECONDITION, "has no checkpoint"));
  ASSERT_TRUE(IsOk(Save(id, "start")));
  v1::TrainStepResponse response;
  Step(*stub_, id, 1, &response);
  ASSERT_TRUE(IsOk(Save(id)));

  v1::DownloadCheckpointRequest request;
  request.set_model_id(id);
  request.set_name("start");
  DownloadedCheckpoint named;
  ASSERT_TRUE(IsOk(DownloadCheckpoint(*stub_, request, &named)));
  EXPECT_EQ(named.header.step(), 0);
  EXPECT_EQ(named.header.checkpoint().name(), "start");
  EXPECT_FALSE(named.header.checkpoint().current());
  request.clear_name();
  request.set_step(1);
  DownloadedCheckpoint by_step;
  ASSERT_TRUE(IsOk(DownloadCheckpoint(*stub_, request, &by_step)));
  EXPECT_EQ(by_step.header.step(), 1);
  EXPECT_NE(by_step.data, named.data);

  request.set_step(7);
  DownloadedCheckpoint missing;
  EXPECT_TRUE(HasStatus(DownloadCheckpoint(*stub_, request, &missing),
                        grpc::StatusCode::NOT_FOUND, "no checkpoint at step 7"));
  request.set_name("start");
  EXPECT_TRUE(HasStatus(DownloadCheckpoint(*stub_, request, &missing),
                        grpc::StatusCode::INVALID_ARGUMENT, "not both"));
  request.clear_step();
  request.set_model_id("m-nope");
  EXPECT_TRUE(HasStatus(DownloadCheckpoint(*stub_, request, &missing),
                        grpc::StatusCode::NOT_FOUND, "m-nope"));
}

TEST_F(CheckpointTransferTest, ChunksAreAtMostFourMebibytes) {
  // One 3 x 1M float32 parameter: 12 MiB.
  StatusOr<v1::Graph> graph = ParseGraphText(
      "name: \"wide\"\nplaceholders { name: \"x\" shape: [ -1, 3 ] }\n"
      "parameters { name: \"w\" shape: [ 3, 1048576 ] init { constant { value: 0.5 } } }\n"
      "nodes { name: \"h\" op: \"matmul\" inputs: [ \"x\", \"w\" ] }\n"
      "nodes { name: \"loss\" op: \"mean\" inputs: \"h\" }\noutputs: \"h\"\nloss: \"loss\"\n");
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const std::string id = CreateModel(*stub_, ModelRequest(*graph, SgdSpec(0.1))).id();
  ASSERT_TRUE(IsOk(Save(id)));
  DownloadedCheckpoint downloaded;
  ASSERT_TRUE(IsOk(DownloadCheckpoint(*stub_, id, &downloaded)));
  EXPECT_EQ(downloaded.data.size(), size_t{12} << 20);
  EXPECT_EQ(downloaded.largest, size_t{4} << 20);
  EXPECT_EQ(downloaded.messages, 4);  // the header, then three chunks
}

TEST_F(CheckpointTransferTest, AnUploadThatDoesNotFitCreatesNothing) {
  std::string id;
  const DownloadedCheckpoint good = TrainedAndDownloaded(&id);
  const size_t directories = ModelDirectories();
  const auto refused = [&](v1::CheckpointHeader header, std::string data, const std::string& text) {
    v1::ModelInfo info;
    EXPECT_TRUE(HasStatus(UploadCheckpoint(*stub_, header, data, &info),
                          grpc::StatusCode::INVALID_ARGUMENT, text));
  };
  v1::CheckpointHeader header = good.header;
  header.mutable_tensors(0)->set_dims(0, 17);  // b1 is [16]
  header.mutable_tensors(0)->set_bytes(17 * 4);
  refused(header, good.data, "tensor 'b1' (parameter) is float32[17], the model's is float32[16]");
  header = good.header;
  header.mutable_tensors(0)->set_name("w9");
  refused(header, good.data, "tensor 'w9' (parameter): the model has no such parameter");
  header = good.header;
  header.mutable_tensors()->RemoveLast();
  refused(header, good.data, "more than the");
  refused(good.header, good.data.substr(0, good.data.size() - 4), "ended after");
  header = good.header;
  header.mutable_tensors(0)->set_bytes(header.tensors(0).bytes() + 4);
  refused(header, good.data, "not its shape's");
  header = good.header;
  header.mutable_tensors()->DeleteSubrange(0, 1);
  refused(header, good.data.substr(static_cast<size_t>(good.header.tensors(0).bytes())),
          "the upload lists 3 parameters");
  header = good.header;
  header.mutable_model()->mutable_graph()->set_loss("nowhere");
  refused(header, good.data, "header");
  // A stream without a header, or with two.
  v1::ModelInfo info;
  {
    auto context = Context();
    auto writer = stub_->UploadCheckpoint(context.get(), &info);
    v1::CheckpointChunk chunk;
    chunk.set_data("abc");
    writer->Write(chunk);
    writer->WritesDone();
    EXPECT_TRUE(HasStatus(writer->Finish(), grpc::StatusCode::INVALID_ARGUMENT,
                          "the first message must carry the header"));
  }
  {
    auto context = Context();
    auto writer = stub_->UploadCheckpoint(context.get(), &info);
    v1::CheckpointChunk chunk;
    *chunk.mutable_header() = good.header;
    writer->Write(chunk);
    writer->Write(chunk);
    writer->WritesDone();
    EXPECT_TRUE(HasStatus(writer->Finish(), grpc::StatusCode::INVALID_ARGUMENT,
                          "message 1: only the first message may carry a header"));
  }
  v1::ListModelsResponse models;
  ASSERT_TRUE(IsOk(stub_->ListModels(Context().get(), v1::ListModelsRequest(), &models)));
  EXPECT_EQ(models.models_size(), 1);
  EXPECT_EQ(ModelDirectories(), directories);
}

TEST_F(CheckpointTransferTest, IdleStreamsTimeOutAndGiveTheirSlotBack) {
  v1::ModelInfo info;
  const auto start = std::chrono::steady_clock::now();
  auto context = Context(std::chrono::seconds(30));
  auto writer = stub_->UploadCheckpoint(context.get(), &info);
  // Sends nothing (Finish would end the stream): --stream-idle-timeout (1 s here) ends it.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  writer->Write(v1::CheckpointChunk());
  EXPECT_TRUE(HasStatus(writer->Finish(), grpc::StatusCode::DEADLINE_EXCEEDED,
                        "--stream-idle-timeout"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  // A download whose client stops taking chunks: 64 MiB cannot sit in the transport's buffers.
  StatusOr<v1::Graph> graph = ParseGraphText(
      "name: \"wide\"\nplaceholders { name: \"x\" shape: [ -1, 16 ] }\n"
      "parameters { name: \"w\" shape: [ 16, 1048576 ] init { constant { value: 0.5 } } }\n"
      "nodes { name: \"h\" op: \"matmul\" inputs: [ \"x\", \"w\" ] }\n"
      "nodes { name: \"loss\" op: \"mean\" inputs: \"h\" }\noutputs: \"h\"\nloss: \"loss\"\n");
  ASSERT_TRUE(graph.ok());
  const std::string id = CreateModel(*stub_, ModelRequest(*graph, SgdSpec(0.1))).id();
  ASSERT_TRUE(IsOk(Save(id)));
  v1::DownloadCheckpointRequest request;
  request.set_model_id(id);
  auto download_context = Context(std::chrono::seconds(30));
  auto reader = stub_->DownloadCheckpoint(download_context.get(), request);
  v1::CheckpointChunk chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  EXPECT_TRUE(chunk.has_header());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int64_t bytes = 0;
  while (reader->Read(&chunk)) bytes += static_cast<int64_t>(chunk.data().size());
  EXPECT_FALSE(reader->Finish().ok());
  EXPECT_LT(bytes, int64_t{64} << 20);
  // Both slots are free again: a download goes through.
  DownloadedCheckpoint downloaded;
  EXPECT_TRUE(IsOk(DownloadCheckpoint(*stub_, id, &downloaded)));
  EXPECT_EQ(downloaded.data.size(), size_t{64} << 20);
}

}  // namespace
}  // namespace backflow::testing
