// The file mechanics CheckpointStore is built from: protobuf records framed and written
// atomically (Note [Atomic files] in server/storage/checkpoint_store.h), directory listings,
// filesystem errors with ErrnoCode's status code, crash recovery and the removal of a model's
// directory. Internal to server/storage.
#ifndef BACKFLOW_SERVER_STORAGE_STORE_FILES_H_
#define BACKFLOW_SERVER_STORAGE_STORE_FILES_H_

#include <google/protobuf/message_lite.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "engine/core/status.h"

namespace backflow::server {

// `name` has 1 to 64 characters, each a letter, a digit, '_', '-' or one of `more`, so it is a
// single plain path component; else InvalidArgument "WHAT 'NAME' ...".
Status CheckPlainName(const std::string& name, std::string_view what,
                      std::string_view more = "");
// "PATH: cannot ACTION: REASON", with ErrnoCode's code for a system error (else Unavailable).
Status FilesystemError(const std::error_code& ec, const std::filesystem::path& path,
                       const std::string& action);
bool IsDirectory(const std::filesystem::path& path);
// The names in `dir`, sorted; empty (and `ec` set) if it cannot be listed.
std::vector<std::string> ListDirectory(const std::filesystem::path& dir, std::error_code* ec);
// `record`, framed, written atomically to `path`; the file's size.
StatusOr<int64_t> WriteRecord(const std::filesystem::path& path,
                              const google::protobuf::MessageLite& record,
                              std::chrono::milliseconds write_delay);
// The framed record at `path`: NotFound if there is none, DataLoss if it is damaged.
Status ReadRecord(const std::filesystem::path& path, google::protobuf::MessageLite* record);

// Note [Atomic files]: a crash leaves temporary files, and DeleteModel may leave a trash
// directory; CreateModel may leave a model directory with nothing in it. Removes all of them
// from DATA_DIR/models (`models`), best effort.
inline constexpr char kModelsDir[] = "models";
inline constexpr char kModelFile[] = "model.pb";
// Where UploadCheckpoint builds a model's directory before renaming it into place:
// "models/.staging-ID-RANDOM", removed by RecoverAfterCrash if a crash left it.
inline constexpr std::string_view kStagingPrefix = ".staging-";

// An id becomes a directory name: allowing only plain names rules out "..", "/", hidden names
// and anything a shell or filesystem treats specially.
inline Status ValidateId(const std::string& id) { return CheckPlainName(id, "model id"); }

// `status` with every "DATA_DIR/" taken out of its message: what a store method answers names
// paths relative to the data directory (Note [Relative paths] in checkpoint_store.h).
Status Relative(Status status, const std::string& data_dir);
template <typename T>
StatusOr<T> Relative(StatusOr<T> result, const std::string& data_dir) {
  if (result.ok()) return result;
  return Relative(result.status(), data_dir);
}

void RecoverAfterCrash(const std::filesystem::path& models);
// Removes a model's directory `dir`: either it is gone (OK) or, on any error, still in place.
Status DeleteModelDirectory(const std::filesystem::path& dir);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_STORE_FILES_H_
