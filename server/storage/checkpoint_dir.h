// A model's checkpoint directory, as CheckpointStore reads and writes it: the file names of
// automatic and named checkpoints, HEAD, and the older server's checkpoint.pb (the layout in
// server/storage/checkpoint_store.h). Internal to server/storage; paths here are absolute, and
// the store makes its messages relative.
#ifndef BACKFLOW_SERVER_STORAGE_CHECKPOINT_DIR_H_
#define BACKFLOW_SERVER_STORAGE_CHECKPOINT_DIR_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "backflow/v1/store.pb.h"
#include "engine/core/status.h"

namespace backflow::server {

inline constexpr char kLegacyCheckpointFile[] = "checkpoint.pb";
inline constexpr char kCheckpointsDir[] = "checkpoints";
inline constexpr char kHeadFile[] = "HEAD";

// One of a model's checkpoint files.
struct StoredCheckpoint {
  std::string path;  // relative to the data directory: "models/ID/checkpoints/FILE"
  std::string name;  // "" for an automatic checkpoint
  int64_t sequence = 0;
  int64_t step = 0;
  int64_t saved_unix_ms = 0;
  int64_t bytes = 0;  // the file's size
  bool current = false;  // the model is at it: what a restart loads
  std::string damage;  // ListCheckpoints only: why the file cannot be read, if it cannot
};

struct LoadedCheckpoint {
  v1::CheckpointRecord record;
  StoredCheckpoint info;
};

// 1 to 64 characters from [A-Za-z0-9_.-], not starting with '.' or '-'; else InvalidArgument.
Status ValidateCheckpointName(const std::string& name);

// Which checkpoint to load: by name, by step (the newest taken at it), or neither: the one the
// model is at.
struct CheckpointSelector {
  std::string name;
  std::optional<int64_t> step;
};

// A checkpoint file as its directory entry names it.
struct CheckpointEntry {
  std::string file;  // in checkpoints/, or kLegacyCheckpointFile in the model's directory
  std::string name;
  int64_t sequence = 0;
  bool legacy() const { return file == kLegacyCheckpointFile; }
};

// "000000000012.auto.bfck" or "000000000012.named.NAME.bfck".
std::string CheckpointFileName(int64_t sequence, const std::string& name);

// A model's checkpoint files, by sequence, and the older files of a name written again (a
// crash between a replacing save and its removal of the old file), which only the next save of
// that name removes.
struct CheckpointListing {
  std::vector<CheckpointEntry> entries;
  std::vector<CheckpointEntry> stale;
  int64_t max_sequence = 0;
};

// The listing of the model directory `dir`.
StatusOr<CheckpointListing> ScanCheckpoints(const std::filesystem::path& dir);
std::filesystem::path EntryPath(const std::filesystem::path& dir, const CheckpointEntry& entry);
// The entry the model is at: HEAD's, else the newest. Null if there is none. DataLoss if HEAD is
// damaged or names a file that is not there.
StatusOr<const CheckpointEntry*> CurrentEntry(const std::filesystem::path& dir,
                                              const CheckpointListing& listing);
Status WriteHead(const std::filesystem::path& dir, const CheckpointEntry& entry);
// The entry of `listing` that `selector` picks (`current` as CurrentEntry gave it). NotFound
// "model 'ID' has no checkpoint ..." if there is none; by step, DataLoss if no readable file
// has the step and some file could not be read.
StatusOr<const CheckpointEntry*> SelectEntry(const std::filesystem::path& dir,
                                             const std::string& id,
                                             const CheckpointListing& listing,
                                             const CheckpointEntry* current,
                                             const CheckpointSelector& selector);
// A checkpoint file's contents and what it says about itself (info.path left empty).
StatusOr<LoadedCheckpoint> ReadEntry(const std::filesystem::path& dir,
                                     const CheckpointEntry& entry);
// What the entry's manifest says (the whole file, for a legacy checkpoint), without its tensors.
Status ReadEntryInfo(const std::filesystem::path& dir, const CheckpointEntry& entry,
                     StoredCheckpoint* info);
// Removes files no longer wanted, best effort: what stays is removed by a later save.
void RemoveEntries(const std::filesystem::path& dir, const std::vector<CheckpointEntry>& entries);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_CHECKPOINT_DIR_H_
