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
  fs::path CheckpointFile(const std::string& id, const std::string& file) const {
    return ModelDir(id) / "checkpoints" / file;
  }

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
  StatusOr<StoredCheckpoint> stored = store_->SaveCheckpoint("m1", saved);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(stored->path, "models/m1/checkpoints/000000000001.auto.bfck");
  EXPECT_EQ(stored->bytes,
            static_cast<int64_t>(fs::file_size(CheckpointFile("m1", "000000000001.auto.bfck"))));
  EXPECT_EQ(stored->sequence, 1);
  EXPECT_EQ(stored->step, 12);
  EXPECT_EQ(stored->saved_unix_ms, 1700000000012);
  EXPECT_TRUE(stored->current);
  EXPECT_EQ(Listing(ModelDir("m1")), (std::vector<std::string>{"HEAD", "checkpoints", "model.pb"}));

  StatusOr<LoadedCheckpoint> loaded = store_->LoadCheckpoint("m1");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->record.step(), 12);
  EXPECT_EQ(loaded->record.parameters().at("w").data(), saved.parameters().at("w").data());
  EXPECT_THAT(FloatValues(loaded->record.parameters().at("b")), ElementsAre(-1.5f, 12.0f));
  EXPECT_THAT(FloatValues(loaded->record.optimizer_state().at("w/m")),
              ElementsAre(0.5f, 1e-3f * 12));
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->record, saved));
  EXPECT_EQ(loaded->info.path, stored->path);
  EXPECT_TRUE(loaded->info.current);

  std::vector<std::string> problems;
  std::vector<StoredModel> all = store_->LoadAll(&problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(all[0].record, ModelRecordFor("m1")));
  EXPECT_EQ(all[0].record.request().name(), "net m1");
  ASSERT_TRUE(all[0].checkpoint.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*all[0].checkpoint, saved));
  EXPECT_EQ(all[0].checkpoint_path, "models/m1/checkpoints/000000000001.auto.bfck");
}

TEST_F(CheckpointStoreTest, SavesKeepTheNewestAutomaticCheckpoints) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  for (int step = 1; step <= 5; ++step) {
    ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(step, /*w_elements=*/step)).ok());
  }
  StatusOr<LoadedCheckpoint> loaded = store_->LoadCheckpoint("m");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->record.step(), 5);
  EXPECT_THAT(FloatValues(loaded->record.parameters().at("w")),
              ElementsAre(5.0f, 5.25f, 5.5f, 5.75f, 6.0f));
  // keep_automatic is 3 by default.
  EXPECT_EQ(Listing(ModelDir("m") / "checkpoints"),
            (std::vector<std::string>{"000000000003.auto.bfck", "000000000004.auto.bfck",
                                      "000000000005.auto.bfck"}));
  loaded = store_->LoadCheckpoint("m", {.step = 3});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->record.step(), 3);
  EXPECT_FALSE(loaded->info.current);
  const Status pruned = store_->LoadCheckpoint("m", {.step = 2}).status();
  EXPECT_EQ(pruned.code(), StatusCode::kNotFound);
  EXPECT_EQ(pruned.message(), "model 'm' has no checkpoint at step 2");
}

TEST_F(CheckpointStoreTest, NamedCheckpointsStayUntilDeleted) {
  store_.reset();
  StatusOr<std::unique_ptr<CheckpointStore>> opened =
      CheckpointStore::Open(dir_.str(), {.keep_automatic = 1});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store_ = std::move(opened).value();
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(1)).ok());
  StatusOr<StoredCheckpoint> best = store_->SaveCheckpoint("m", CheckpointAt(2), "best");
  ASSERT_TRUE(best.ok()) << best.status().ToString();
  EXPECT_EQ(best->path, "models/m/checkpoints/000000000002.named.best.bfck");
  EXPECT_EQ(best->name, "best");
  for (int step = 3; step <= 5; ++step) {
    ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(step)).ok());
  }
  EXPECT_EQ(Listing(ModelDir("m") / "checkpoints"),
            (std::vector<std::string>{"000000000002.named.best.bfck", "000000000005.auto.bfck"}));

  // A name is taken until replaced; replacing writes a new file and removes the old one.
  const Status taken = store_->SaveCheckpoint("m", CheckpointAt(6), "best").status();
  EXPECT_EQ(taken.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(taken.message(), HasSubstr("already has a checkpoint named 'best'"));
  StatusOr<LoadedCheckpoint> loaded = store_->LoadCheckpoint("m", {.name = "best"});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->record.step(), 2);
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(6), "best", /*replace=*/true).ok());
  loaded = store_->LoadCheckpoint("m", {.name = "best"});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->record.step(), 6);
  EXPECT_TRUE(loaded->info.current);

  StatusOr<std::vector<StoredCheckpoint>> listed = store_->ListCheckpoints("m");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "");
  EXPECT_EQ((*listed)[0].step, 5);
  EXPECT_EQ((*listed)[0].sequence, 5);
  EXPECT_FALSE((*listed)[0].current);
  EXPECT_EQ((*listed)[1].name, "best");
  EXPECT_EQ((*listed)[1].step, 6);
  EXPECT_EQ((*listed)[1].sequence, 6);
  EXPECT_TRUE((*listed)[1].current);
  EXPECT_EQ(
      (*listed)[1].bytes,
      static_cast<int64_t>(fs::file_size(CheckpointFile("m", "000000000006.named.best.bfck"))));
  EXPECT_EQ((*listed)[1].damage, "");

  // The one the model is at cannot be deleted; after a later save it can.
  Status deleted = store_->DeleteCheckpoint("m", "best");
  EXPECT_EQ(deleted.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(deleted.message(), HasSubstr("is the one model 'm' is at"));
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(7)).ok());
  EXPECT_TRUE(store_->DeleteCheckpoint("m", "best").ok());
  EXPECT_EQ(store_->DeleteCheckpoint("m", "best").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->LoadCheckpoint("m", {.name = "best"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Listing(ModelDir("m") / "checkpoints"),
            (std::vector<std::string>{"000000000007.auto.bfck"}));
}

TEST_F(CheckpointStoreTest, SetCurrentDecidesWhatTheNextOpenLoads) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  StatusOr<StoredCheckpoint> first = store_->SaveCheckpoint("m", CheckpointAt(1), "first");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(2)).ok());
  ASSERT_TRUE(store_->SetCurrent("m", first->path).ok());
  EXPECT_EQ(store_->SetCurrent("m", "models/m/checkpoints/nothing").code(), StatusCode::kNotFound);
  store_.reset();
  store_ = OpenStore();
  std::vector<StoredModel> all = store_->LoadAll(nullptr);
  ASSERT_EQ(all.size(), 1u);
  ASSERT_TRUE(all[0].checkpoint.has_value());
  EXPECT_EQ(all[0].checkpoint->step(), 1);
  EXPECT_EQ(all[0].checkpoint_path, first->path);
  // Without a HEAD the model is at its newest checkpoint.
  fs::remove(ModelDir("m") / "HEAD");
  all = store_->LoadAll(nullptr);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].checkpoint->step(), 2);
}

TEST_F(CheckpointStoreTest, HeadNamingAMissingFileIsDataLoss) {
  CreateWithCheckpoint("m", 1);
  fs::remove(CheckpointFile("m", "000000000001.auto.bfck"));
  const Status status = store_->LoadCheckpoint("m").status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_EQ(status.message(),
            "models/m/HEAD: names checkpoint '000000000001.auto.bfck', which is not in "
            "models/m/checkpoints");
  std::vector<std::string> problems;
  std::vector<DamagedModel> damaged;
  EXPECT_TRUE(store_->LoadAll(&problems, &damaged).empty());
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0].id, "m");
}

TEST_F(CheckpointStoreTest, ACheckpointOfAnOlderServerIsReadAndPrunedLater) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  std::string payload;
  ASSERT_TRUE(CheckpointAt(4).SerializeToString(&payload));
  WriteBytes(ModelDir("m") / "checkpoint.pb", FrameRecord(payload));
  std::vector<StoredModel> all = store_->LoadAll(nullptr);
  ASSERT_EQ(all.size(), 1u);
  ASSERT_TRUE(all[0].checkpoint.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*all[0].checkpoint, CheckpointAt(4)));
  EXPECT_EQ(all[0].checkpoint_path, "models/m/checkpoint.pb");
  StatusOr<std::vector<StoredCheckpoint>> listed = store_->ListCheckpoints("m");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].sequence, 0);
  EXPECT_EQ((*listed)[0].step, 4);
  EXPECT_TRUE((*listed)[0].current);
  for (int step = 5; step <= 7; ++step) {
    ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(step)).ok());
    EXPECT_EQ(fs::exists(ModelDir("m") / "checkpoint.pb"), step < 7) << step;
  }
  EXPECT_EQ(store_->LoadCheckpoint("m", {.step = 5})->record.step(), 5);
}

TEST_F(CheckpointStoreTest, ListingNamesADamagedFileAndGoesOn) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(1), "old").ok());
  ASSERT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(2)).ok());
  const fs::path file = CheckpointFile("m", "000000000001.named.old.bfck");
  std::string bytes = *ReadFile(file.string());
  bytes[30] ^= 0x04;  // inside the manifest
  WriteBytes(file, bytes);
  StatusOr<std::vector<StoredCheckpoint>> listed = store_->ListCheckpoints("m");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].damage,
            "models/m/checkpoints/000000000001.named.old.bfck: checksum mismatch in record 1");
  EXPECT_EQ((*listed)[1].damage, "");
  EXPECT_EQ((*listed)[1].step, 2);
  const Status restore = store_->LoadCheckpoint("m", {.name = "old"}).status();
  EXPECT_EQ(restore.code(), StatusCode::kDataLoss);
  // By step, a damaged file is passed over, and named when nothing else matches.
  EXPECT_EQ(store_->LoadCheckpoint("m", {.step = 2})->record.step(), 2);
  EXPECT_EQ(store_->LoadCheckpoint("m", {.step = 1}).status().code(), StatusCode::kDataLoss);
}

TEST_F(CheckpointStoreTest, CheckpointNamesAreChecked) {
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("m")).ok());
  for (const std::string& name :
       std::vector<std::string>{".hidden", "-flag", "a/b", "..", std::string(65, 'x'), "sp ace"}) {
    const Status status = store_->SaveCheckpoint("m", CheckpointAt(1), name).status();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(status.message(), HasSubstr("checkpoint name")) << name;
  }
  EXPECT_FALSE(fs::exists(ModelDir("m") / "checkpoints"));
  EXPECT_TRUE(store_->SaveCheckpoint("m", CheckpointAt(1), "v1.2_final-B").ok());
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
  const fs::path file = CheckpointFile("m", "000000000001.auto.bfck");
  std::string bytes = *ReadFile(file.string());
  bytes[bytes.size() - 30] ^= 0x10;  // the tensors' bytes: record 2
  WriteBytes(file, bytes);
  Status status = store_->LoadCheckpoint("m").status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_EQ(status.message(),  // relative
            "models/m/checkpoints/000000000001.auto.bfck: checksum mismatch in record 2");

  // Not a checkpoint file at all.
  WriteBytes(file, FrameRecord("\xff\xff\xff\xff"));
  status = store_->LoadCheckpoint("m").status();
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("not a backflow checkpoint file (bad magic)"));
}

TEST_F(CheckpointStoreTest, LoadAllSkipsAndReportsDamagedModels) {
  CreateWithCheckpoint("good", 5);
  CreateWithCheckpoint("bad_checkpoint", 6);
  CreateWithCheckpoint("bad_model", 7);
  ASSERT_TRUE(store_->CreateModel(ModelRecordFor("fresh")).ok());  // never saved
  const fs::path checkpoint = CheckpointFile("bad_checkpoint", "000000000001.auto.bfck");
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
  EXPECT_THAT(problems[0], HasSubstr("models/bad_checkpoint/checkpoints/000000000001.auto.bfck: "
                                     "checksum mismatch in record 3"));
  EXPECT_THAT(problems[0], HasSubstr("model 'bad_checkpoint' not loaded"));
  EXPECT_THAT(problems[1],
              HasSubstr("models/bad_model/model.pb: bad magic"));
  EXPECT_EQ(problems[1].find(dir_.str()), std::string::npos) << "an absolute path";
  // Skipped models stay on disk, untouched, for an operator to look at.
  EXPECT_EQ(*ReadFile(checkpoint.string()), bytes);
  EXPECT_TRUE(fs::exists(CheckpointFile("bad_model", "000000000001.auto.bfck")));
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
  WriteBytes(ModelDir("m") / ".HEAD.tmp.4242.00000000deadbeef", "half a he");
  WriteBytes(ModelDir("m") / "checkpoints" / ".000000000002.auto.bfck.tmp.4242.00000000deadbeef",
             "half a checkpo");
  WriteBytes(models / ".write-probe.tmp.4242.0000000000000001", "");
  fs::create_directories(models / ".deleted-old-0123456789abcdef" / "inner");
  WriteBytes(models / ".deleted-old-0123456789abcdef" / "model.pb", "x");
  fs::create_directory(ModelDir("interrupted_create"));
  WriteBytes(ModelDir("interrupted_create") / ".model.pb.tmp.4242.0000000000000002", "x");

  store_.reset();  // one store per directory at a time (its LOCK)
  store_ = OpenStore();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Listing(models), std::vector<std::string>{"m"});
  EXPECT_EQ(Listing(ModelDir("m")), (std::vector<std::string>{"HEAD", "checkpoints", "model.pb"}));
  EXPECT_EQ(Listing(ModelDir("m") / "checkpoints"),
            std::vector<std::string>{"000000000001.auto.bfck"});
  StatusOr<LoadedCheckpoint> loaded = store_->LoadCheckpoint("m");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->record.step(), 9);
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
        StatusOr<StoredCheckpoint> saved = store_->SaveCheckpoint(id, CheckpointAt(100 * t + i));
        if (!saved.ok()) failures[t] = saved.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(failures[t].ok()) << failures[t].ToString();
    StatusOr<LoadedCheckpoint> loaded = store_->LoadCheckpoint("t" + std::to_string(t));
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->record.step(), 100 * t + kSaves);
    EXPECT_TRUE(MessageDifferencer::Equals(loaded->record, CheckpointAt(100 * t + kSaves)));
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
