// Note [Atomic files] under a real crash: a child process is killed with SIGKILL while it is
// half-way through writing a checkpoint, and the old checkpoint must survive intact.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "server/storage/checkpoint_store.h"
#include "tests/server/storage/storage_test_util.h"

namespace backflow::server {
namespace {

namespace fs = std::filesystem;
using testing::CheckpointAt;
using testing::Listing;
using testing::ScratchDir;

constexpr std::chrono::milliseconds kWriteDelay{2000};  // the child sleeps mid-write this long
constexpr std::chrono::seconds kPollLimit{10};

// The first file in `dir` whose name starts with `prefix` and that holds at least `min_bytes`;
// empty if there is none.
fs::path FindTemporaryFile(const fs::path& dir, const std::string& prefix, uintmax_t min_bytes) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (!it->path().filename().string().starts_with(prefix)) continue;
    std::error_code size_error;
    const uintmax_t size = fs::file_size(it->path(), size_error);
    if (!size_error && size >= min_bytes) return it->path();
  }
  return {};
}

// Forks a child that runs `write` and exits. Once a temporary file (`prefix` in `dir`) holds
// `min_bytes`, kills the child with SIGKILL and reaps it. Returns that file's path, or an empty
// path (after reporting a failure) if it did not appear within kPollLimit.
fs::path KillMidWrite(const fs::path& dir, const std::string& prefix, uintmax_t min_bytes,
                      const std::function<bool()>& write) {
  const pid_t child = ::fork();
  if (child < 0) {
    ADD_FAILURE() << "fork failed";
    return {};
  }
  if (child == 0) _exit(write() ? 0 : 1);  // nothing else in the child: no gtest, no exit hooks

  fs::path temp;
  const auto deadline = std::chrono::steady_clock::now() + kPollLimit;
  int status = 0;
  bool exited_early = false;
  while (temp.empty() && std::chrono::steady_clock::now() < deadline) {
    temp = FindTemporaryFile(dir, prefix, min_bytes);
    if (!temp.empty()) break;
    if (::waitpid(child, &status, WNOHANG) == child) {
      exited_early = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (exited_early) {
    ADD_FAILURE() << "the child finished before it could be killed; status " << status;
    return {};
  }
  ::kill(child, SIGKILL);
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  EXPECT_FALSE(temp.empty()) << "no temporary file appeared within " << kPollLimit.count() << " s";
  return temp;
}

class CrashSafetyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::unique_ptr<CheckpointStore> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateModel(testing::ModelRecordFor("m")).ok());
    ASSERT_TRUE(store->SaveCheckpoint("m", CheckpointAt(7)).ok());
    StatusOr<std::string> bytes = ReadFile(checkpoint_path().string());
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    old_bytes_ = *bytes;
  }

  std::unique_ptr<CheckpointStore> Open(CheckpointStoreOptions options = {}) {
    StatusOr<std::unique_ptr<CheckpointStore>> store = CheckpointStore::Open(dir_.str(), options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  fs::path model_dir() const { return dir_.path() / "models" / "m"; }
  fs::path checkpoints_dir() const { return model_dir() / "checkpoints"; }
  fs::path checkpoint_path() const { return checkpoints_dir() / "000000000001.auto.bfck"; }

  // After the kill: the old checkpoint is whole, and a fresh Open clears the debris.
  void ExpectOldCheckpointSurvives(const fs::path& temp) {
    StatusOr<std::string> bytes = ReadFile(checkpoint_path().string());
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    EXPECT_EQ(*bytes, old_bytes_);
    std::unique_ptr<CheckpointStore> store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_FALSE(fs::exists(temp));
    EXPECT_EQ(Listing(model_dir()), (std::vector<std::string>{"HEAD", "checkpoints", "model.pb"}));
    EXPECT_EQ(Listing(checkpoints_dir()), std::vector<std::string>{"000000000001.auto.bfck"});
    StatusOr<LoadedCheckpoint> loaded = store->LoadCheckpoint("m");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->record.step(), 7);
  }

  ScratchDir dir_;
  std::string old_bytes_;
};

TEST_F(CrashSafetyTest, KilledWriteFileAtomicallyLeavesTheOldFile) {
  const std::string new_bytes = FrameRecord(std::string(1 << 20, 'n'));
  const std::string path = checkpoint_path().string();
  const fs::path temp =
      KillMidWrite(checkpoints_dir(), ".000000000001.auto.bfck.tmp.", new_bytes.size() / 2,
                   [&] { return WriteFileAtomically(path, new_bytes, kWriteDelay).ok(); });
  ASSERT_FALSE(temp.empty());
  // The child died holding exactly the first half: it was killed mid-write.
  EXPECT_EQ(fs::file_size(temp), new_bytes.size() / 2);
  ExpectOldCheckpointSurvives(temp);
}

TEST_F(CrashSafetyTest, KilledSaveCheckpointLeavesTheOldCheckpoint) {
  std::unique_ptr<CheckpointStore> slow_store = Open({.write_delay = kWriteDelay});
  ASSERT_NE(slow_store, nullptr);
  // 8 MB of parameters: two data records, and the write pauses after the first.
  const v1::CheckpointRecord next = CheckpointAt(8, /*w_elements=*/2000000);
  const fs::path temp = KillMidWrite(checkpoints_dir(), ".000000000002.auto.bfck.tmp.", 1000000,
                                     [&] { return slow_store->SaveCheckpoint("m", next).ok(); });
  ASSERT_FALSE(temp.empty());
  // About half the file: less than the new parameter tensor alone.
  EXPECT_LT(fs::file_size(temp), 2000000 * sizeof(float));
  slow_store.reset();  // the server's process is gone: so is its lock on the directory
  ExpectOldCheckpointSurvives(temp);
}

}  // namespace
}  // namespace backflow::server
