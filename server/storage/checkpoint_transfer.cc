// CheckpointStore's side of DownloadCheckpoint and UploadCheckpoint: opening a checkpoint for
// streaming, and creating a model with its first checkpoint in one step.
#include <filesystem>
#include <system_error>
#include <utility>

#include "server/storage/checkpoint_store.h"
#include "server/storage/store_files.h"

namespace backflow::server {

namespace fs = std::filesystem;

StatusOr<OpenedCheckpoint> CheckpointStore::OpenCheckpoint(
    const std::string& id, const CheckpointSelector& selector) const {
  BF_ASSIGN_OR_RETURN(const fs::path dir, SelectionDirectory(id, selector));
  const auto open = [&]() -> StatusOr<OpenedCheckpoint> {
    BF_ASSIGN_OR_RETURN(const CheckpointListing listing, ScanCheckpoints(dir));
    BF_ASSIGN_OR_RETURN(const CheckpointEntry* current, CurrentEntry(dir, listing));
    BF_ASSIGN_OR_RETURN(const CheckpointEntry* chosen,
                        SelectEntry(dir, id, listing, current, selector));
    OpenedCheckpoint opened;
    if (chosen->legacy()) {
      BF_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, ReadEntry(dir, *chosen));
      opened.legacy = std::move(loaded.record);
      opened.info = std::move(loaded.info);
    } else {
      const fs::path path = EntryPath(dir, *chosen);
      BF_ASSIGN_OR_RETURN(opened.reader, CheckpointFileReader::Open(path.string()));
      const v1::CheckpointManifest& manifest = opened.reader->manifest();
      if (manifest.sequence() != chosen->sequence || manifest.name() != chosen->name) {
        return DataLossError(path.string() + ": its manifest says checkpoint " +
                             std::to_string(manifest.sequence()) + " '" + manifest.name() +
                             "', not what its file name says");
      }
      opened.info = {.name = chosen->name,
                     .sequence = chosen->sequence,
                     .step = manifest.step(),
                     .saved_unix_ms = manifest.saved_unix_ms()};
      std::error_code ec;
      opened.info.bytes = static_cast<int64_t>(fs::file_size(path, ec));
    }
    opened.info.path = RelativePath(EntryPath(dir, *chosen).string());
    opened.info.current = chosen == current;
    return opened;
  };
  return Relative(open(), root_);
}

StatusOr<StoredCheckpoint> CheckpointStore::CreateModelWithCheckpoint(
    const v1::ModelRecord& record, const v1::CheckpointRecord& checkpoint) {
  BF_RETURN_IF_ERROR(ValidateId(record.id()));
  const fs::path models = fs::path(root_) / kModelsDir;
  const fs::path dir = models / record.id();
  const fs::path staging =
      models / (std::string(kStagingPrefix) + record.id() + "-" + RandomSuffix());
  const auto create = [&]() -> StatusOr<StoredCheckpoint> {
    std::error_code ec;
    if (fs::exists(dir, ec)) {
      return AlreadyExistsError("model '" + record.id() + "' already exists (" + dir.string() +
                                ")");
    }
    fs::create_directory(staging, ec);
    if (ec) return FilesystemError(ec, staging, "create directory");
    BF_RETURN_IF_ERROR(WriteRecord(staging / kModelFile, record, options_.write_delay).status());
    BF_ASSIGN_OR_RETURN(StoredCheckpoint saved,
                        SaveCheckpointFiles(staging, record.id(), checkpoint, "", false));
    BF_RETURN_IF_ERROR(SyncDirectory(staging.string()));
    // rename(2) does not replace a non-empty directory, so a model created meanwhile under the
    // same id is never overwritten.
    fs::rename(staging, dir, ec);
    if (ec) return FilesystemError(ec, dir, "rename " + staging.filename().string() + " to");
    if (Status synced = SyncDirectory(models.string()); !synced.ok()) {
      // Not durable: rather than a model that might vanish in a crash, none (as a failed
      // delete keeps the model, Note [Atomic files]).
      fs::rename(dir, staging, ec);
      return synced;
    }
    saved.path = RelativePath((dir / fs::path(saved.path).lexically_relative(staging)).string());
    return saved;
  };
  StatusOr<StoredCheckpoint> created = create();
  if (!created.ok()) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
  }
  return Relative(std::move(created), root_);
}

}  // namespace backflow::server
