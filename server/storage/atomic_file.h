// Files that are replaced whole or not at all, and the checksummed framing around their
// contents: the mechanics of Note [Atomic files] (server/storage/checkpoint_store.h).
//
// Every function here is thread-safe; two concurrent writers of the same path each leave a
// complete file and the later rename wins.
#ifndef BACKFLOW_SERVER_STORAGE_ATOMIC_FILE_H_
#define BACKFLOW_SERVER_STORAGE_ATOMIC_FILE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/core/status.h"

namespace backflow::server {

// The status code for a failed system call on the data directory: the environment's doing,
// never Internal. ResourceExhausted when space, quota, file size or descriptors ran out (a
// full disk: ENOSPC, EDQUOT, EFBIG, EMFILE, ENFILE, ENOMEM); FailedPrecondition when the
// directory is not in a state that allows the write and an operator must change it (read-only
// or permission denied: EROFS, EACCES, EPERM; something missing or in the way: ENOENT,
// ENOTDIR, EISDIR, ENOTEMPTY, EEXIST, ELOOP, ENAMETOOLONG, EXDEV, EBUSY); Unavailable otherwise (EIO and other
// failures of the device, which may pass).
StatusCode ErrnoCode(int err);

// "PATH: cannot ACTION: strerror(err)" with ErrnoCode(err).
Status ErrnoError(int err, const std::string& path, const char* action);
// `value`'s low `bytes` bytes appended to `out`, least significant first.
void PutLittleEndian(uint64_t value, int bytes, std::string* out);
// The `count`-byte little-endian number at `offset` of `bytes` (which must hold it).
uint64_t GetLittleEndian(std::string_view bytes, size_t offset, int count);
// CRC-32 (zlib's polynomial) of `data`.
uint32_t Crc32(std::string_view data);

// Size of the frame header: "BFLW", u32 version, u64 payload length, u32 CRC-32.
inline constexpr size_t kFrameHeaderSize = 20;
inline constexpr uint32_t kFrameVersion = 1;

// `payload` behind the frame header of Note [Atomic files].
std::string FrameRecord(const std::string& payload);
// The payload of a framed file, checked. DataLoss "PATH: ..." for a wrong magic, an unknown
// version, a truncated file, trailing bytes or a checksum mismatch.
StatusOr<std::string> UnframeRecord(const std::string& bytes, const std::string& path);

// Writes `bytes` to `path` atomically (Note [Atomic files]): through a temporary file
// ".NAME.tmp.PID.RANDOM" in the same directory, which is removed again if anything fails.
// Errors name the path and the system's reason, with ErrnoCode's status code. With `write_delay` > 0 the temporary file is
// written half, synced, and the call sleeps that long before the rest: a testing aid that lets
// a crash test kill the process mid-write.
Status WriteFileAtomically(const std::string& path, const std::string& bytes,
                           std::chrono::milliseconds write_delay = {});
// The same, for contents too large to hold twice in memory: appended piece by piece to the
// temporary file, which Commit() syncs and renames over `path`. Destroyed without a successful
// Commit(), the temporary file is removed and `path` is untouched. After a failed call every
// later call fails with the same status.
class AtomicFileWriter {
 public:
  static StatusOr<std::unique_ptr<AtomicFileWriter>> Create(
      const std::string& path, std::chrono::milliseconds write_delay = {});
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Status Append(std::string_view bytes);
  // With write_delay > 0: syncs what is written so far and sleeps that long (the crash tests'
  // "killed mid-write"), once, the first time it is called.
  Status Pause();
  // Bytes appended so far.
  int64_t size() const { return size_; }
  Status Commit();

 private:
  AtomicFileWriter(std::string path, std::string temp_path, int fd,
                   std::chrono::milliseconds write_delay);
  std::string path_;
  std::string temp_path_;
  int fd_;
  std::chrono::milliseconds write_delay_;
  int64_t size_ = 0;
  bool committed_ = false;
  Status failed_;
};

// The whole file. NotFound if it does not exist; other errors name the path, with ErrnoCode's
// status code.
StatusOr<std::string> ReadFile(const std::string& path);

// fsync(2) on a directory, so that renames, creations and removals inside it are durable.
Status SyncDirectory(const std::string& path);
// True for the temporary names WriteFileAtomically uses (".*.tmp.*"): leftovers of a crash.
bool IsTemporaryFileName(std::string_view name);
// 16 random hex digits, for names that must not collide across threads and processes.
std::string RandomSuffix();

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_ATOMIC_FILE_H_
