// The store's side of checkpoint streams: CheckpointFileReader gives a file's tensor bytes a
// record at a time with every check of a whole read, OpenCheckpoint serves today's files and an
// older server's checkpoint.pb, and CreateModelWithCheckpoint is all or nothing.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>

#include "server/storage/checkpoint_store.h"
#include "tests/server/storage/storage_test_util.h"

namespace backflow::server {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using testing::CheckpointAt;
using testing::ModelRecordFor;
using testing::ScratchDir;
using testing::WriteBytes;

// The tensors' bytes in a record, in manifest order (what a reader must give).
std::string TensorBytesInOrder(const v1::CheckpointRecord& record) {
  std::string bytes;
  const v1::CheckpointManifest manifest = DescribeCheckpoint(record);
  for (const v1::CheckpointTensor& entry : manifest.tensors()) {
    bytes += FindCheckpointTensor(record, entry)->data();
  }
  return bytes;
}

// Everything a reader gives, or its error.
StatusOr<std::string> ReadAll(CheckpointFileReader& reader, int* chunks = nullptr) {
  std::string bytes;
  std::string chunk;
  while (true) {
    BF_ASSIGN_OR_RETURN(const bool more, reader.Next(&chunk));
    if (!more) break;
    bytes += chunk;
    if (chunks != nullptr) ++*chunks;
  }
  return bytes;
}

TEST(CheckpointFileReaderTest, GivesTheTensorsBytesInChunksOfAtMostFourMebibytes) {
  ScratchDir dir;
  const std::string path = (dir.path() / "c.bfck").string();
  // w: 2.5M float32 = 10 MB: three data records.
  const v1::CheckpointRecord record = CheckpointAt(7, 2'500'000);
  ASSERT_TRUE(WriteCheckpointFile(path, record, {.model_id = "m", .name = "n", .sequence = 3})
                  .ok());
  StatusOr<std::unique_ptr<CheckpointFileReader>> reader = CheckpointFileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->manifest().step(), 7);
  EXPECT_EQ((*reader)->manifest().name(), "n");
  ASSERT_EQ((*reader)->manifest().tensors_size(), 3);
  int chunks = 0;
  StatusOr<std::string> bytes = ReadAll(**reader, &chunks);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, TensorBytesInOrder(record));
  EXPECT_EQ(chunks, 3);
  std::string chunk;
  StatusOr<bool> again = (*reader)->Next(&chunk);  // past the end: still the end
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST(CheckpointFileReaderTest, ADamagedRecordIsDataLossWhenItIsReached) {
  ScratchDir dir;
  const std::string path = (dir.path() / "c.bfck").string();
  ASSERT_TRUE(WriteCheckpointFile(path, CheckpointAt(7, 2'500'000), {}).ok());
  StatusOr<std::string> file = ReadFile(path);
  ASSERT_TRUE(file.ok());
  (*file)[file->size() - 100] ^= 1;  // inside the last data record
  WriteBytes(path, *file);
  StatusOr<std::unique_ptr<CheckpointFileReader>> reader = CheckpointFileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::string chunk;
  ASSERT_TRUE((*reader)->Next(&chunk).ok());  // the first two records are intact
  ASSERT_TRUE((*reader)->Next(&chunk).ok());
  StatusOr<bool> damaged = (*reader)->Next(&chunk);
  EXPECT_EQ(damaged.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(damaged.status().message(), HasSubstr("checksum mismatch in record 4"));
  // Cut at the end record: the reader says so at the end, never earlier.
  file = ReadFile(path);
  (*file)[file->size() - 100] ^= 1;
  WriteBytes(path, file->substr(0, file->size() - 24));
  reader = CheckpointFileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  StatusOr<std::string> cut = ReadAll(**reader);
  EXPECT_EQ(cut.status().code(), StatusCode::kDataLoss) << cut.status().ToString();
}

TEST(CheckpointAssemblerTest, FillsTensorsFromPiecesOfAnySizeAndRefusesExtraBytes) {
  const v1::CheckpointRecord record = CheckpointAt(2, 10);
  const v1::CheckpointManifest manifest = DescribeCheckpoint(record);
  StatusOr<CheckpointAssembler> assembler = CheckpointAssembler::Create(manifest.tensors(), "up");
  ASSERT_TRUE(assembler.ok()) << assembler.status().ToString();
  const std::string bytes = TensorBytesInOrder(record);
  EXPECT_EQ(assembler->total(), bytes.size());
  for (size_t at = 0; at < bytes.size(); at += 7) {
    ASSERT_TRUE(assembler->Append(std::string_view(bytes).substr(at, 7)).ok());
  }
  EXPECT_TRUE(assembler->complete());
  v1::CheckpointRecord filled = assembler->record();
  filled.set_step(2);
  filled.set_optimizer_steps(2);
  filled.set_saved_unix_ms(record.saved_unix_ms());
  EXPECT_TRUE(MessageDifferencer::Equals(filled, record));
  const Status extra = assembler->Append("x");
  EXPECT_EQ(extra.code(), StatusCode::kDataLoss);
  EXPECT_THAT(extra.message(), HasSubstr("up: "));

  v1::CheckpointManifest twice = manifest;
  *twice.add_tensors() = manifest.tensors(0);
  EXPECT_THAT(CheckpointAssembler::Create(twice.tensors(), "up").status().message(),
              HasSubstr("is listed twice"));
}

class CheckpointTransferStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<std::unique_ptr<CheckpointStore>> store = CheckpointStore::Open(dir_.str());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  fs::path ModelDir(const std::string& id) const { return dir_.path() / "models" / id; }

  ScratchDir dir_;
  std::unique_ptr<CheckpointStore> store_;
};

TEST_F(CheckpointTransferStoreTest, OpensTheCurrentOrAChosenCheckpoint) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(1), "first").ok());
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(2)).ok());
  StatusOr<OpenedCheckpoint> current = store_->OpenCheckpoint("m", {});
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  ASSERT_NE(current->reader, nullptr);
  EXPECT_EQ(current->info.step, 2);
  EXPECT_TRUE(current->info.current);
  EXPECT_EQ(current->info.path, "models/m/checkpoints/000000000002.auto.bfck");
  StatusOr<std::string> bytes = ReadAll(*current->reader);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, TensorBytesInOrder(CheckpointAt(2)));

  StatusOr<OpenedCheckpoint> named = store_->OpenCheckpoint("m", {.name = "first"});
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->info.step, 1);
  EXPECT_FALSE(named->info.current);
  // The file stays readable after it is removed (an open file outlives its name).
  ASSERT_TRUE(store_->DeleteCheckpoint("m", "first").ok());
  bytes = ReadAll(*named->reader);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, TensorBytesInOrder(CheckpointAt(1)));

  EXPECT_EQ(store_->OpenCheckpoint("m", {.step = 9}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->OpenCheckpoint("nobody", {}).status().code(), StatusCode::kNotFound);
}

TEST_F(CheckpointTransferStoreTest, AnOlderServersCheckpointIsOpenedFromMemory) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  std::string payload;
  ASSERT_TRUE(CheckpointAt(4).SerializeToString(&payload));
  WriteBytes(ModelDir("m") / "checkpoint.pb", FrameRecord(payload));
  StatusOr<OpenedCheckpoint> opened = store_->OpenCheckpoint("m", {});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->reader, nullptr);
  ASSERT_TRUE(opened->legacy.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*opened->legacy, CheckpointAt(4)));
  EXPECT_EQ(opened->info.path, "models/m/checkpoint.pb");
}

TEST_F(CheckpointTransferStoreTest, CreateModelWithCheckpointIsAllOrNothing) {
  StatusOr<StoredCheckpoint> created =
      store_->CreateModelWithCheckpoint(ModelRecordFor("m"), CheckpointAt(5));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->path, "models/m/checkpoints/000000000001.auto.bfck");
  EXPECT_EQ(created->step, 5);
  std::vector<StoredModel> all = store_->LoadAll(nullptr);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(all[0].record, ModelRecordFor("m")));
  ASSERT_TRUE(all[0].checkpoint.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*all[0].checkpoint, CheckpointAt(5)));
  // A taken id changes nothing and leaves nothing behind.
  const Status again = store_->CreateModelWithCheckpoint(ModelRecordFor("m"), CheckpointAt(6)).status();
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  EXPECT_THAT(testing::Listing(dir_.path() / "models"), ::testing::ElementsAre("m"));
  EXPECT_EQ(store_->LoadAll(nullptr)[0].checkpoint->step(), 5);
}

TEST_F(CheckpointTransferStoreTest, AStagingDirectoryLeftByACrashIsRemovedOnOpen) {
  const fs::path staging = dir_.path() / "models" / ".staging-m-0123456789abcdef";
  fs::create_directories(staging / "checkpoints");
  WriteBytes(staging / "model.pb", "half");
  store_.reset();
  StatusOr<std::unique_ptr<CheckpointStore>> reopened = CheckpointStore::Open(dir_.str());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_FALSE(fs::exists(staging));
  std::vector<std::string> problems;
  EXPECT_TRUE((*reopened)->LoadAll(&problems).empty());
  EXPECT_TRUE(problems.empty());
}

}  // namespace
}  // namespace backflow::server
