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
void RecoverAfterCrash(const std::filesystem::path& models);
// Removes a model's directory `dir`: either it is gone (OK) or, on any error, still in place.
Status DeleteModelDirectory(const std::filesystem::path& dir);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_STORAGE_STORE_FILES_H_
