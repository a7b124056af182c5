// CheckpointStore: models and their latest checkpoints in the data directory.
//
// Layout (one directory per model, so deleting a model is one rename):
//   DATA_DIR/models/ID/model.pb        ModelRecord, written once when the model is created
//   DATA_DIR/models/ID/checkpoint.pb   CheckpointRecord, the latest checkpoint
//
// Note [Atomic files]
// Every file is written whole to a temporary name in the same directory, fsynced, renamed over
// the old name, and the directory is fsynced; rename(2) replaces a name atomically, so a crash
// at any point leaves either the old file or the new one, never a mix. Every file is framed as
//   "BFLW" | u32 format version | u64 payload length | u32 CRC-32 of payload | payload
// (little-endian), so a file damaged after the fact (a torn disk write, a truncated copy) is
// detected on load and reported as DATA_LOSS naming the file, instead of being half-read.
// Leftover temporary files (a crash mid-write) are removed when the store opens.
//
// Thread safety: all methods may be called concurrently for different model ids; calls for one
// id must be serialised by the caller (the server does so through the model's work queue).
#ifndef BACKFLOW_SERVER_STORAGE_CHECKPOINT_STORE_H_
#define BACKFLOW_SERVER_STORAGE_CHECKPOINT_STORE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backflow/v1/store.pb.h"
#include "engine/core/status.h"
#include "server/storage/atomic_file.h"

namespace backflow::server {

struct StoredModel {
  v1::ModelRecord record;
  std::optional<v1::CheckpointRecord> checkpoint;
};

// A model directory whose files cannot be read: its id and DataLoss naming what is damaged.
struct DamagedModel {
  std::string id;
  Status damage;
};

struct CheckpointStoreOptions {
  // Testing aid (the crash-safety test): sleep this long after writing half of a temporary
  // file, so a test can kill the process mid-write.
  std::chrono::milliseconds write_delay{0};
};

class CheckpointStore {
 public:
  // Creates DATA_DIR/models if needed (and DATA_DIR itself). Fails with a Status naming the
  // path if the directory cannot be created or written. Then recovers from a crash: removes
  // leftover temporary files, the remains of interrupted deletes (".deleted-*") and model
  // directories left empty by an interrupted CreateModel. The store holds an exclusive
  // flock on DATA_DIR/LOCK while it lives: a second store on the same directory (another
  // server, in this process or another) gets FailedPrecondition.
  static StatusOr<std::unique_ptr<CheckpointStore>> Open(const std::string& data_dir,
                                                         CheckpointStoreOptions options = {});

  ~CheckpointStore();
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;

  const std::string& data_dir() const { return data_dir_; }
  // "models/ID" and "models/ID/checkpoint.pb": how messages name a model's files.
  static std::string ModelPath(const std::string& id);
  static std::string CheckpointPath(const std::string& id);

  // Note [Relative paths]
  // Every Status a method below returns names files relative to the data directory
  // ("models/ID/checkpoint.pb: cannot create: Permission denied"), never by its absolute path:
  // the messages reach clients, who have no business learning the server's filesystem, and the
  // operator knows where the data directory is. Errors of the file system carry ErrnoCode's
  // status code (server/storage/atomic_file.h), never Internal.

  // Every method taking a model id (record.id() for CreateModel) checks it first: 1 to 64
  // characters from [A-Za-z0-9_-], so an id is always a single plain path component; anything
  // else is InvalidArgument.

  // Writes the model's record (creating its directory). AlreadyExists if the id is taken. On
  // failure no directory is left behind.
  Status CreateModel(const v1::ModelRecord& record);
  // Replaces the model's latest checkpoint atomically; returns the file's size in bytes.
  // NotFound if the model's directory does not exist.
  StatusOr<int64_t> SaveCheckpoint(const std::string& id, const v1::CheckpointRecord& checkpoint);
  // NotFound if the model has no checkpoint; DataLoss if the file fails its checksum or does
  // not parse.
  StatusOr<v1::CheckpointRecord> LoadCheckpoint(const std::string& id) const;
  // Removes the model's directory. NotFound if there is none. On failure (a read-only
  // directory, say) the model's files are all still in place.
  Status DeleteModel(const std::string& id);

  // Every model in the directory, sorted by id. A model whose files cannot be read is skipped
  // and reported in `problems` ("models/ID/checkpoint.pb: checksum mismatch; ..."),
  // never fatal. That includes a readable model.pb with a damaged checkpoint.pb: loading the
  // model without it would silently restart its training from the initial parameters, so it
  // is left on disk, untouched, for an operator. `problems` may be null. Each such model is
  // also added to `damaged` (if not null), so the server can keep it listed. Reads only.
  std::vector<StoredModel> LoadAll(std::vector<std::string>* problems,
                                   std::vector<DamagedModel>* damaged = nullptr) const;

 private:
  CheckpointStore(std::string data_dir, CheckpointStoreOptions options, int lock_fd);
  std::string data_dir_;  // as given to Open
  std::string root_;  // data_dir_ absolute and normalised, without a trailing '/'
  CheckpointStoreOptions options_;
  int lock_fd_;  // holds flock(DATA_DIR/LOCK) for the store's lifetime
};

// The file framing and atomic writes of Note [Atomic files] (FrameRecord, UnframeRecord,
// WriteFileAtomically, ReadFile) are declared in server/storage/atomic_file.h, included above.

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_CHECKPOINT_STORE_H_
