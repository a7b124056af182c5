#include "server/storage/store_files.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "server/storage/atomic_file.h"
#include "server/storage/checkpoint_dir.h"

namespace backflow::server {

namespace fs = std::filesystem;

// A model directory being deleted is first renamed to ".deleted-ID-RANDOM" (DeleteModel).
constexpr std::string_view kTrashPrefix = ".deleted-";
constexpr size_t kMaxNameLength = 64;

Status CheckPlainName(const std::string& name, std::string_view what, std::string_view more) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return InvalidArgumentError(std::string(what) + " '" + name.substr(0, kMaxNameLength) +
                                (name.size() > kMaxNameLength ? "...'" : "'") +
                                " must have 1 to " + std::to_string(kMaxNameLength) +
                                " characters");
  }
  const bool plain = std::all_of(name.begin(), name.end(), [more](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || more.find(c) != std::string_view::npos;
  });
  if (!plain) {
    std::string allowed = "letters, digits, '_', '-'";
    for (const char c : more) allowed += std::string(", '") + c + "'";
    return InvalidArgumentError(std::string(what) + " '" + name + "' may only hold " + allowed);
  }
  return Status::Ok();
}

Status FilesystemError(const std::error_code& ec, const fs::path& path, const std::string& action) {
  std::string message = path.string() + ": cannot " + action + ": " + ec.message();
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    return Status(ErrnoCode(ec.value()), std::move(message));
  }
  return UnavailableError(std::move(message));
}

bool IsDirectory(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

std::vector<std::string> ListDirectory(const fs::path& dir, std::error_code* ec) {
  std::vector<std::string> names;
  fs::directory_iterator it(dir, *ec);
  for (; !*ec && it != fs::directory_iterator(); it.increment(*ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

StatusOr<int64_t> WriteRecord(const fs::path& path, const google::protobuf::MessageLite& record,
                              std::chrono::milliseconds write_delay) {
  // Protobuf refuses to serialise messages of 2 GiB or more.
  if (record.ByteSizeLong() > static_cast<size_t>(INT_MAX)) {
    return ResourceExhaustedError(path.string() + ": record of " +
                                  std::to_string(record.ByteSizeLong()) +
                                  " bytes is past protobuf's 2 GiB limit");
  }
  std::string payload;
  if (!record.SerializeToString(&payload)) {
    return InternalError(path.string() + ": cannot serialise " + record.GetTypeName());
  }
  const std::string framed = FrameRecord(payload);
  BF_RETURN_IF_ERROR(WriteFileAtomically(path.string(), framed, write_delay));
  return static_cast<int64_t>(framed.size());
}

Status ReadRecord(const fs::path& path, google::protobuf::MessageLite* record) {
  BF_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path.string()));
  BF_ASSIGN_OR_RETURN(const std::string payload, UnframeRecord(bytes, path.string()));
  // The checksum matched, so a parse failure means a writer bug or a foreign file; either way
  // the contents are not what was saved.
  if (!record->ParseFromString(payload)) {
    return DataLossError(path.string() + ": does not parse as " + record->GetTypeName());
  }
  return Status::Ok();
}

Status Relative(Status status, const std::string& data_dir) {
  if (status.ok()) return status;
  const std::string prefix = data_dir + "/";
  std::string message = status.message();
  for (size_t at = message.find(prefix); at != std::string::npos; at = message.find(prefix, at)) {
    message.erase(at, prefix.size());
  }
  return Status(status.code(), std::move(message));
}

// Note [Atomic files]: a crash leaves temporary files, and DeleteModel may leave a trash
// directory and UploadCheckpoint a staging one; CreateModel may leave a model directory with nothing in it. All are removed,
// best effort: what cannot be removed now is harmless, as LoadAll skips it.
void RecoverAfterCrash(const fs::path& models) {
  std::error_code ec;
  for (const std::string& name : ListDirectory(models, &ec)) {
    const fs::path path = models / name;
    std::error_code ignored;
    if (name.starts_with(kTrashPrefix) || name.starts_with(kStagingPrefix)) {
      fs::remove_all(path, ignored);
    } else if (IsTemporaryFileName(name)) {
      fs::remove(path, ignored);
    } else if (name.front() != '.' && IsDirectory(path)) {
      std::error_code list_error;
      for (const std::string& file : ListDirectory(path, &list_error)) {
        if (IsTemporaryFileName(file)) fs::remove(path / file, ignored);
      }
      std::error_code checkpoints_error;
      for (const std::string& file : ListDirectory(path / kCheckpointsDir, &checkpoints_error)) {
        if (IsTemporaryFileName(file)) fs::remove(path / kCheckpointsDir / file, ignored);
      }
      // Removes the directory only if it is now empty.
      if (!list_error && fs::is_empty(path, ignored)) fs::remove(path, ignored);
    }
  }
}

// CheckpointStore::DeleteModel once the directory is known to exist. Either the model is gone
// (OK) or, on any error, its directory is still in place: a failed delete changes nothing.
Status DeleteModelDirectory(const fs::path& dir) {
  const fs::path models = dir.parent_path();
  // One rename takes the whole model out of sight atomically; removing its files afterwards
  // may be interrupted, and Open finishes the job (RecoverAfterCrash).
  const fs::path trash =
      models / (std::string(kTrashPrefix) + dir.filename().string() + "-" + RandomSuffix());
  std::error_code ec;
  fs::rename(dir, trash, ec);
  if (ec) return FilesystemError(ec, dir, "rename to " + trash.filename().string());
  if (Status synced = SyncDirectory(models.string()); !synced.ok()) {
    // Not durable: the model might come back after a crash, so it is put back and the delete
    // reported as failed, rather than gone now and back after a restart.
    fs::rename(trash, dir, ec);
    return synced;
  }
  fs::remove_all(trash, ec);
  return Status::Ok();
}

}  // namespace backflow::server
