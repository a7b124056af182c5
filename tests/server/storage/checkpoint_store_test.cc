#include "server/storage/checkpoint_store.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/server/storage/storage_test_util.h"

namespace backflow::server {
namespace {

namespace fs = std::filesystem;
using ::google::protobuf::util::MessageDifferencer;
using testing::CheckpointAt;
using ::testing::ElementsAre;
using testing::FloatValues;
using ::testing::HasSubstr;
using testing::Listing;
using testing::ModelRecordFor;
using testing::ScratchDir;
using testing::WriteBytes;

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore(); }

  std::unique_ptr<CheckpointStore> OpenStore() {
    StatusOr<std::unique_ptr<CheckpointStore>> store = CheckpointStore::Open(dir_.str());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  fs::path ModelDir(const std::string& id) const { return dir_.path() / "models" / id; }

  void CreateWithCheckpoint(const std::string& id, int64_t step) {
    ASSERT_TRUE(store_->CreateModel(ModelRecordFor(id)).ok());
    ASSERT_TRUE(store_->SaveCheckpoint(id, CheckpointAt(step)).ok());
  }

  std::vector<std::string> LoadedIds(std::vector<std::string>* problems) {
    std::vector<std::string> ids;
    for (const StoredModel& model : store_->LoadAll(problems)) ids.push_back(model.record.id());
    return ids;
  }

  ScratchDir dir_;
  std::unique_ptr<CheckpointStore> store_;
};

TEST_F(CheckpointStoreTest, ModelAndCheckpointRoundTrip) {
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->data_dir(), dir_.str());
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m1")).ok());
  const v1::CheckpointRecord saved = CheckpointAt(12);
  StatusOr<int64_t> size = store_->SaveCheckpoint("m1", saved);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, static_cast<int64_t>(fs::file_size(ModelDir("m1") / "checkpoint.pb")));
  EXPECT_EQ(Listing(ModelDir("m1")), (std::vector<std::string>{"checkpoint.pb", "model.pb"}));

  StatusOr<v1::CheckpointRecord> loaded = store_->LoadCheckpoint("m1");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->step(), 12);
  EXPECT_EQ(loaded->parameters().at("w").data(), saved.parameters().at("w").data());
  EXPECT_THAT(FloatValues(loaded->parameters().at("b")), ElementsAre(-1.5f, 12.0f));
  EXPECT_THAT(FloatValues(loaded->optimizer_state().at("w/m")), ElementsAre(0.5f, 1e-3f * 12));
  EXPECT_TRUE(MessageDifferencer::Equals(*loaded, saved));

  std::vector<std::string> problems;
  std::vector<StoredModel> all = store_->LoadAll(&problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(all[0].record, ModelRecordFor("m1")));
  EXPECT_EQ(all[0].record.request().name(), "net m1");
  ASSERT_TRUE(all[0].checkpoint.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*all[0].checkpoint, saved));
}

TEST_F(CheckpointStoreTest, SecondSaveReplacesTheFirst) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(1)).ok());
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(2, /*w_elements=*/3)).ok());
  StatusOr<v1::CheckpointRecord> loaded = store_->LoadCheckpoint("m");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->step(), 2);
  EXPECT_THAT(FloatValues(loaded->parameters().at("w")), ElementsAre(2.0f, 2.25f, 2.5f));
  EXPECT_EQ(Listing(ModelDir("m")), (std::vector<std::string>{"checkpoint.pb", "model.pb"}));
}

TEST_F(CheckpointStoreTest, CreatingAnExistingModelIsAlreadyExists) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  const Status again = store_->CreateModel(ModelRecordFor("m"));
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("'m'"));
}

TEST_F(CheckpointStoreTest, MissingModelOrCheckpointIsNotFound) {
  EXPECT_EQ(store_->SaveCheckpoint("ghost", CheckpointAt(1)).status().code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(ModelDir("ghost")));
  EXPECT_EQ(store_->LoadCheckpoint("ghost").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  const Status status = store_->LoadCheckpoint("m").status();
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("model 'm' has no checkpoint"));
}

TEST_F(CheckpointStoreTest, CorruptCheckpointIsDataLossNamingTheFile) {
  CreateWithCheckpoint("m", 3);
  const fs::path file = ModelDir("m") / "checkpoint.pb";
  std::string bytes = *ReadFile(file.string());
  bytes[bytes.size() / 2] ^= 0x10;
  WriteBytes(file, bytes);
  Status status = store_->LoadCheckpoint("m").status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_EQ(status.message(), "models/m/checkpoint.pb: checksum mismatch");  // relative

  // A sound frame around bytes that are not a CheckpointRecord.
  WriteBytes(file, FrameRecord("\xff\xff\xff\xff"));
  status = store_->LoadCheckpoint("m").status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("does not parse as backflow.v1.CheckpointRecord"));
}

TEST_F(CheckpointStoreTest, LoadAllSkipsAndReportsDamagedModels) {
  CreateWithCheckpoint("good", 5);
  CreateWithCheckpoint("bad_checkpoint", 6);
  CreateWithCheckpoint("bad_model", 7);
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("fresh")).ok());  // never saved
  const fs::path checkpoint = ModelDir("bad_checkpoint") / "checkpoint.pb";
  std::string bytes = *ReadFile(checkpoint.string());
  bytes.back() ^= 0x01;
  WriteBytes(checkpoint, bytes);
  WriteBytes(ModelDir("bad_model") / "model.pb", "this is not a backflow record at all");

  std::vector<std::string> problems;
  std::vector<StoredModel> all = store_->LoadAll(&problems);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].record.id(), "fresh");
  EXPECT_FALSE(all[0].checkpoint.has_value());
  EXPECT_EQ(all[1].record.id(), "good");
  ASSERT_TRUE(all[1].checkpoint.has_value());
  EXPECT_EQ(all[1].checkpoint->step(), 5);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_THAT(problems[0], HasSubstr("models/bad_checkpoint/checkpoint.pb: checksum mismatch"));
  EXPECT_THAT(problems[0], HasSubstr("model 'bad_checkpoint' not loaded"));
  EXPECT_THAT(problems[1],
              HasSubstr("models/bad_model/model.pb: bad magic"));
  EXPECT_EQ(problems[1].find(dir_.str()), std::string::npos) << "an absolute path";
  // Skipped models stay on disk, untouched, for an operator to look at.
  EXPECT_EQ(*ReadFile(checkpoint.string()), bytes);
  EXPECT_TRUE(fs::exists(ModelDir("bad_model") / "checkpoint.pb"));
  // Their ids stay taken.
  EXPECT_EQ(store_->CreateModel(ModelRecordFor("bad_model")).code(), StatusCode::kAlreadyExists);
}

TEST_F(CheckpointStoreTest, LoadAllIsSortedAndRejectsMismatchedIds) {
  for (const char* id : {"zeta", "alpha", "mid"}) {
    ASSERT_TRUE(store_->CreateModel(ModelRecordFor(id)).ok());
  }
  // A model.pb copied into the wrong directory.
  fs::create_directory(ModelDir("copy"));
  fs::copy_file(ModelDir("mid") / "model.pb", ModelDir("copy") / "model.pb");
  std::vector<std::string> problems;
  EXPECT_THAT(LoadedIds(&problems), ElementsAre("alpha", "mid", "zeta"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("holds model id 'mid', not its directory's name"));
  EXPECT_THAT(LoadedIds(nullptr), ElementsAre("alpha", "mid", "zeta"));
}

TEST_F(CheckpointStoreTest, OpenRemovesLeftoversOfACrash) {
  CreateWithCheckpoint("m", 9);
  const fs::path models = dir_.path() / "models";
  WriteBytes(ModelDir("m") / ".checkpoint.pb.tmp.4242.00000000deadbeef", "half a checkpo");
  WriteBytes(models / ".write-probe.tmp.4242.0000000000000001", "");
  fs::create_directories(models / ".deleted-old-0123456789abcdef" / "inner");
  WriteBytes(models / ".deleted-old-0123456789abcdef" / "model.pb", "x");
  fs::create_directory(ModelDir("interrupted_create"));
  WriteBytes(ModelDir("interrupted_create") / ".model.pb.tmp.4242.0000000000000002", "x");

  store_.reset();  // one store per directory at a time (its LOCK)
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Listing(models), std::vector<std::string>{"m"});
  EXPECT_EQ(Listing(ModelDir("m")), (std::vector<std::string>{"checkpoint.pb", "model.pb"}));
  StatusOr<v1::CheckpointRecord> loaded = store_->LoadCheckpoint("m");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->step(), 9);
}

TEST(CheckpointStoreOpenTest, CreatesMissingDirectories) {
  ScratchDir dir;
  const fs::path data_dir = dir.path() / "a" / "b";
  StatusOr<std::unique_ptr<CheckpointStore>> store = CheckpointStore::Open(data_dir.string());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(fs::is_directory(data_dir / "models"));
  EXPECT_TRUE(Listing(data_dir / "models").empty());
}

TEST(CheckpointStoreOpenTest, DataDirThatIsAFileFailsNamingIt) {
  ScratchDir dir;
  WriteBytes(dir.path() / "file", "not a directory");
  StatusOr<std::unique_ptr<CheckpointStore>> store =
      CheckpointStore::Open((dir.path() / "file").string());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr((dir.path() / "file").string()));
}

TEST_F(CheckpointStoreTest, InvalidIdsAreRejectedBeforeTouchingTheDisk) {
  const std::vector<std::string> invalid = {"../x", "",    "a/b", std::string(65, 'a'), "..", ".m",
                                            "a b",  "m\n", "/etc"};
  for (const std::string& id : invalid) {
    SCOPED_TRACE("id '" + id + "'");
    EXPECT_EQ(store_->CreateModel(ModelRecordFor(id)).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->SaveCheckpoint(id, CheckpointAt(1)).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->LoadCheckpoint(id).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->DeleteModel(id).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Listing(dir_.path()), (std::vector<std::string>{"LOCK", "models"}));
  EXPECT_TRUE(Listing(dir_.path() / "models").empty());
  const std::string longest(64, 'Z');
  EXPECT_TRUE(store_->CreateModel(ModelRecordFor(longest)).ok());
  EXPECT_TRUE(store_->CreateModel(ModelRecordFor("Az09_-")).ok());
}

TEST_F(CheckpointStoreTest, DeleteModelRemovesItsDirectory) {
  CreateWithCheckpoint("m", 4);
  ASSERT_TRUE(store_->DeleteModel("m").ok());
  std::vector<std::string> problems;
  EXPECT_TRUE(store_->LoadAll(&problems).empty());
  EXPECT_TRUE(problems.empty());
  EXPECT_TRUE(Listing(dir_.path() / "models").empty());  // no trash left behind
  EXPECT_EQ(store_->DeleteModel("m").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->LoadCheckpoint("m").status().code(), StatusCode::kNotFound);

  // The id can be used again, and starts without a checkpoint.
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  EXPECT_EQ(store_->LoadCheckpoint("m").status().code(), StatusCode::kNotFound);
}

TEST_F(CheckpointStoreTest, ConcurrentSavesOfDifferentModels) {
  constexpr int kThreads = 4;
  constexpr int kSaves = 8;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(store_->CreateModel(ModelRecordFor("t" + std::to_string(t))).ok());
  }
  std::vector<Status> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &failures] {
      const std::string id = "t" + std::to_string(t);
      for (int i = 1; i <= kSaves; ++i) {
        StatusOr<int64_t> size = store_->SaveCheckpoint(id, CheckpointAt(100 * t + i));
        if (!size.ok()) failures[t] = size.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(failures[t].ok()) << failures[t].ToString();
    StatusOr<v1::CheckpointRecord> loaded = store_->LoadCheckpoint("t" + std::to_string(t));
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->step(), 100 * t + kSaves);
    EXPECT_TRUE(MessageDifferencer::Equals(*loaded, CheckpointAt(100 * t + kSaves)));
  }
  std::vector<std::string> problems;
  EXPECT_EQ(store_->LoadAll(&problems).size(), static_cast<size_t>(kThreads));
  EXPECT_TRUE(problems.empty());
}

TEST_F(CheckpointStoreTest, ASecondStoreOnTheSameDirectoryIsRefused) {
  StatusOr<std::unique_ptr<CheckpointStore>> second = CheckpointStore::Open(dir_.str());
  ASSERT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another backflow-server"),
            std::string::npos)
      << second.status().message();
  store_.reset();
  EXPECT_TRUE(CheckpointStore::Open(dir_.str()).ok());  // released with the first store
}

}  // namespace
}  // namespace backflow::server
