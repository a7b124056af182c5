// CheckpointStore: models and their checkpoints in the data directory.
//
// Layout (one directory per model, so deleting a model is one rename):
//   DATA_DIR/models/ID/model.pb        ModelRecord, written once when the model is created
//   DATA_DIR/models/ID/checkpoints/    the model's checkpoints (Note [Checkpoint files]):
//       SEQUENCE.auto.bfck             automatic ones: autosave, shutdown, SaveCheckpoint
//                                      without a name; the newest `keep_automatic` are kept
//       SEQUENCE.named.NAME.bfck       named ones, removed only by DeleteCheckpoint
//   DATA_DIR/models/ID/HEAD            CheckpointHead: the file the model is at, i.e. its latest
//                                      save or restore, which a restart loads
//   DATA_DIR/models/ID/checkpoint.pb   CheckpointRecord: the one checkpoint servers before
//                                      checkpoint history kept. Read as automatic checkpoint 0
//                                      and pruned like the others once newer ones exist.
// SEQUENCE (12 digits) numbers a model's checkpoints in the order they were written. Without a
// HEAD (a crash between a model's first checkpoint and its HEAD, or a directory from an older
// server) the model is at its highest-numbered checkpoint.
//
// Note [Atomic files]
// Every file is written whole to a temporary name in the same directory, fsynced, renamed over
// the old name, and the directory is fsynced; rename(2) replaces a name atomically, so a crash
// at any point leaves either the old file or the new one, never a mix. model.pb and HEAD are
// framed as
//   "BFLW" | u32 format version | u64 payload length | u32 CRC-32 of payload | payload
// (little-endian), and checkpoint files checksum every record (Note [Checkpoint files]), so a
// file damaged after the fact (a torn disk write, a truncated copy) is detected on load and
// reported as DATA_LOSS naming the file, instead of being half-read. Leftover temporary files
// (a crash mid-write) are removed when the store opens. A save writes its checkpoint file before
// HEAD names it, and prunes old files only after: a crash between any two steps leaves the model
// at its previous checkpoint or its new one, with every file HEAD can name intact.
//
// Thread safety: all methods may be called concurrently for different model ids; calls for one
// id must be serialised by the caller (the server does so with the model's checkpoint mutex).
#ifndef BACKFLOW_SERVER_STORAGE_CHECKPOINT_STORE_H_
#define BACKFLOW_SERVER_STORAGE_CHECKPOINT_STORE_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backflow/v1/store.pb.h"
#include "engine/core/status.h"
#include "server/storage/atomic_file.h"
#include "server/storage/checkpoint_dir.h"
#include "server/storage/checkpoint_file.h"

namespace backflow::server {

struct StoredModel {
  v1::ModelRecord record;
  std::optional<v1::CheckpointRecord> checkpoint;  // the one the model is at
  std::string checkpoint_path;                     // its file, relative to the data directory
};

// A checkpoint opened for streaming (CheckpointStore::OpenCheckpoint): a file reader, or for a
// checkpoint.pb of an older server (never larger than protobuf's 2 GiB), its contents.
struct OpenedCheckpoint {
  std::unique_ptr<CheckpointFileReader> reader;
  std::optional<v1::CheckpointRecord> legacy;  // set when `reader` is null
  StoredCheckpoint info;
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
  // Automatic checkpoints kept per model (at least 1); older ones are removed after each save.
  int keep_automatic = 3;
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
  // "models/ID": how messages name a model's files.
  static std::string ModelPath(const std::string& id);

  // Note [Relative paths]
  // Every Status a method below returns names files relative to the data directory
  // ("models/ID/checkpoints/.000000000003.auto.bfck.tmp.41.9f3c: cannot create: Permission
  // denied"), never by its absolute path: the messages reach clients, who have no business
  // learning the server's filesystem, and the operator knows where the data directory is.
  // Errors of the file system carry ErrnoCode's status code (server/storage/atomic_file.h),
  // never Internal.

  // Every method taking a model id (record.id() for CreateModel) checks it first: 1 to 64
  // characters from [A-Za-z0-9_-], so an id is always a single plain path component; anything
  // else is InvalidArgument. A checkpoint name is 1 to 64 characters from [A-Za-z0-9_.-], not
  // starting with '.' or '-'; anything else is InvalidArgument.

  // Writes the model's record (creating its directory). AlreadyExists if the id is taken. On
  // failure no directory is left behind.
  Status CreateModel(const v1::ModelRecord& record);
  // Writes a new checkpoint file (automatic without a name) and makes it the one the model is
  // at; then removes the automatic checkpoints past the newest `keep_automatic`, and with
  // `replace` the older file of the same name. AlreadyExists if the name is taken and not
  // `replace`; NotFound if the model's directory does not exist. On failure the model is still
  // at its previous checkpoint, and no new file is left.
  StatusOr<StoredCheckpoint> SaveCheckpoint(const std::string& id,
                                            const v1::CheckpointRecord& checkpoint,
                                            const std::string& name = "", bool replace = false);
  // NotFound if the model has no checkpoint (or none of that name or step); DataLoss if the file
  // fails its checks (Note [Checkpoint files]).
  StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& id,
                                            const CheckpointSelector& selector = {}) const;
  // The checkpoint `selector` picks, as LoadCheckpoint, opened for reading a chunk at a time:
  // the data records are checked as they are read. The same errors as LoadCheckpoint.
  StatusOr<OpenedCheckpoint> OpenCheckpoint(const std::string& id,
                                            const CheckpointSelector& selector) const;
  // A new model with `checkpoint` as its first (automatic) checkpoint, all or nothing: the
  // files are written in a staging directory that one rename puts in place, so a crash or a
  // failure leaves no trace of the model (Open removes what a crash left). AlreadyExists if the
  // id is taken.
  StatusOr<StoredCheckpoint> CreateModelWithCheckpoint(const v1::ModelRecord& record,
                                                       const v1::CheckpointRecord& checkpoint);
  // Makes `path` (a StoredCheckpoint's) the checkpoint the model is at.
  Status SetCurrent(const std::string& id, const std::string& path);
  // The model's checkpoints, oldest first, with what each file's manifest says; a file that
  // cannot be read is listed with `damage` set. DataLoss if HEAD is damaged.
  StatusOr<std::vector<StoredCheckpoint>> ListCheckpoints(const std::string& id) const;
  // Removes a named checkpoint. NotFound if there is none; FailedPrecondition if the model is at
  // it (a restart would have nothing to load).
  Status DeleteCheckpoint(const std::string& id, const std::string& name);
  // Removes the model's directory. NotFound if there is none. On failure (a read-only
  // directory, say) the model's files are all still in place.
  Status DeleteModel(const std::string& id);

  // Every model in the directory, sorted by id. A model whose files cannot be read is skipped
  // and reported in `problems` ("models/ID/checkpoints/FILE: checksum mismatch in record 3;
  // ..."), never fatal. That includes a readable model.pb whose current checkpoint (or HEAD) is
  // damaged: loading the model without it would silently restart its training from the initial
  // parameters, so it is left on disk, untouched, for an operator. `problems` may be null. Each
  // such model is also added to `damaged` (if not null), so the server can keep it listed. Reads
  // only.
  std::vector<StoredModel> LoadAll(std::vector<std::string>* problems,
                                   std::vector<DamagedModel>* damaged = nullptr) const;

 private:
  CheckpointStore(std::string data_dir, CheckpointStoreOptions options, int lock_fd);
  StatusOr<StoredCheckpoint> SaveCheckpointFiles(const std::filesystem::path& dir,
                                                 const std::string& id,
                                                 const v1::CheckpointRecord& checkpoint,
                                                 const std::string& name, bool replace) const;
  // The model's directory, once the id and the selector's name are checked; NotFound if there
  // is none.
  StatusOr<std::filesystem::path> SelectionDirectory(const std::string& id,
                                                     const CheckpointSelector& selector) const;
  StatusOr<LoadedCheckpoint> LoadSelected(const std::filesystem::path& dir, const std::string& id,
                                          const CheckpointSelector& selector) const;
  // `path` relative to the data directory, if it is inside it.
  std::string RelativePath(const std::string& path) const;
  std::string data_dir_;  // as given to Open
  std::string root_;  // data_dir_ absolute and normalised, without a trailing '/'
  CheckpointStoreOptions options_;
  int lock_fd_;  // holds flock(DATA_DIR/LOCK) for the store's lifetime
};

// The file framing and atomic writes of Note [Atomic files] (FrameRecord, UnframeRecord,
// WriteFileAtomically, ReadFile) are declared in server/storage/atomic_file.h, included above.

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_CHECKPOINT_STORE_H_
