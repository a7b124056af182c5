#include "server/storage/checkpoint_store.h"

#include <fcntl.h>
#include <google/protobuf/message_lite.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <climits>
#include <filesystem>
#include <system_error>
#include <utility>

namespace backflow::server {
namespace {

namespace fs = std::filesystem;

constexpr char kModelsDir[] = "models";
constexpr char kModelFile[] = "model.pb";
constexpr char kCheckpointFile[] = "checkpoint.pb";
// A model directory being deleted is first renamed to ".deleted-ID-RANDOM" (DeleteModel).
constexpr std::string_view kTrashPrefix = ".deleted-";
constexpr size_t kMaxIdLength = 64;

// An id becomes a directory name: allowing only these characters rules out "..", "/", hidden
// names and anything a shell or filesystem treats specially.
Status ValidateId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdLength) {
    return InvalidArgumentError("model id '" + id.substr(0, kMaxIdLength) +
                                (id.size() > kMaxIdLength ? "...'" : "'") + " must have 1 to " +
                                std::to_string(kMaxIdLength) + " characters");
  }
  const bool plain = std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (!plain) {
    return InvalidArgumentError("model id '" + id + "' may only hold letters, digits, '_', '-'");
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

// `status` with every "DATA_DIR/" taken out of its message: what a store method answers names
// paths relative to the data directory (Note [Relative paths]).
Status Relative(Status status, const std::string& data_dir) {
  if (status.ok()) return status;
  const std::string prefix = data_dir + "/";
  std::string message = status.message();
  for (size_t at = message.find(prefix); at != std::string::npos; at = message.find(prefix, at)) {
    message.erase(at, prefix.size());
  }
  return Status(status.code(), std::move(message));
}

template <typename T>
StatusOr<T> Relative(StatusOr<T> result, const std::string& data_dir) {
  if (result.ok()) return result;
  return Relative(result.status(), data_dir);
}

bool IsDirectory(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// The names in `dir`, sorted; empty if it cannot be listed.
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

// One model's files. A missing checkpoint is normal (never saved); any other failure is not.
StatusOr<StoredModel> LoadModel(const fs::path& dir, const std::string& id) {
  StoredModel model;
  const fs::path model_file = dir / kModelFile;
  BF_RETURN_IF_ERROR(ReadRecord(model_file, &model.record));
  if (model.record.id() != id) {
    return DataLossError(model_file.string() + ": holds model id '" + model.record.id() +
                         "', not its directory's name");
  }
  v1::CheckpointRecord checkpoint;
  const Status status = ReadRecord(dir / kCheckpointFile, &checkpoint);
  if (status.ok()) {
    model.checkpoint = std::move(checkpoint);
  } else if (status.code() != StatusCode::kNotFound) {
    return status;
  }
  return model;
}

// Note [Atomic files]: a crash leaves temporary files, and DeleteModel may leave a trash
// directory; CreateModel may leave a model directory with nothing in it. All are removed,
// best effort: what cannot be removed now is harmless, as LoadAll skips it.
void RecoverAfterCrash(const fs::path& models) {
  std::error_code ec;
  for (const std::string& name : ListDirectory(models, &ec)) {
    const fs::path path = models / name;
    std::error_code ignored;
    if (name.starts_with(kTrashPrefix)) {
      fs::remove_all(path, ignored);
    } else if (IsTemporaryFileName(name)) {
      fs::remove(path, ignored);
    } else if (name.front() != '.' && IsDirectory(path)) {
      std::error_code list_error;
      for (const std::string& file : ListDirectory(path, &list_error)) {
        if (IsTemporaryFileName(file)) fs::remove(path / file, ignored);
      }
      // Removes the directory only if it is now empty.
      if (!list_error && fs::is_empty(path, ignored)) fs::remove(path, ignored);
    }
  }
}

// CheckpointStore::CreateModel once the id is checked.
Status CreateModelFiles(const fs::path& models, const v1::ModelRecord& record,
                        std::chrono::milliseconds write_delay) {
  const fs::path dir = models / record.id();
  std::error_code ec;
  const bool created = fs::create_directory(dir, ec);
  if (ec) return FilesystemError(ec, dir, "create directory");
  const fs::path model_file = dir / kModelFile;
  if (!created && fs::exists(model_file, ec)) {
    return AlreadyExistsError("model '" + record.id() + "' already exists (" + model_file.string() +
                              ")");
  }
  if (ec) return FilesystemError(ec, model_file, "look up");
  // The new directory's entry must be durable before the file inside it can be.
  if (created) BF_RETURN_IF_ERROR(SyncDirectory(models.string()));
  const Status written = WriteRecord(model_file, record, write_delay).status();
  // A directory this call created and could not fill is removed again (best effort; Open
  // removes empty model directories anyway), so a failed CreateModel leaves nothing behind.
  if (!written.ok() && created) fs::remove(dir, ec);
  return written;
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

}  // namespace

CheckpointStore::CheckpointStore(std::string data_dir, CheckpointStoreOptions options,
                                 int lock_fd)
    : data_dir_(std::move(data_dir)), options_(options), lock_fd_(lock_fd) {
  // Paths are built from the absolute, normalised directory, so that Relative() finds its
  // prefix in every message however the directory was named.
  std::error_code ec;
  fs::path root = fs::absolute(data_dir_, ec).lexically_normal();
  if (ec) root = fs::path(data_dir_).lexically_normal();
  root_ = root.string();
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& data_dir,
                                                                 CheckpointStoreOptions options) {
  const fs::path models = fs::path(data_dir) / kModelsDir;
  std::error_code ec;
  fs::create_directories(models, ec);
  if (ec) return FilesystemError(ec, models, "create directory");
  if (!IsDirectory(models)) return FailedPreconditionError(models.string() + ": not a directory");
  // One store per directory: a second server would race this one's writes, and its crash
  // recovery below would delete the temporary files of our saves in progress. The lock goes
  // with the process, so a killed server never leaves it behind.
  const fs::path lock_path = fs::path(data_dir) / "LOCK";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return FilesystemError(std::error_code(errno, std::generic_category()),
                                          lock_path, "open");
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return FailedPreconditionError(data_dir + " is in use by another backflow-server (" +
                                   lock_path.string() + " is locked)");
  }
  std::unique_ptr<CheckpointStore> store(new CheckpointStore(data_dir, options, lock_fd));
  // Finding out now that the directory is read-only beats failing the first SaveCheckpoint.
  const fs::path probe = models / ".write-probe";
  BF_RETURN_IF_ERROR(WriteFileAtomically(probe.string(), "probe"));
  fs::remove(probe, ec);
  if (ec) return FilesystemError(ec, probe, "remove");
  RecoverAfterCrash(models);
  return store;
}

CheckpointStore::~CheckpointStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string CheckpointStore::ModelPath(const std::string& id) {
  return std::string(kModelsDir) + "/" + id;
}

std::string CheckpointStore::CheckpointPath(const std::string& id) {
  return ModelPath(id) + "/" + kCheckpointFile;
}

Status CheckpointStore::CreateModel(const v1::ModelRecord& record) {
  BF_RETURN_IF_ERROR(ValidateId(record.id()));
  return Relative(CreateModelFiles(fs::path(root_) / kModelsDir, record, options_.write_delay),
                  root_);
}

StatusOr<int64_t> CheckpointStore::SaveCheckpoint(const std::string& id,
                                                  const v1::CheckpointRecord& checkpoint) {
  BF_RETURN_IF_ERROR(ValidateId(id));
  const fs::path dir = fs::path(root_) / kModelsDir / id;
  if (!IsDirectory(dir)) return NotFoundError(ModelPath(id) + ": no such model directory");
  return Relative(WriteRecord(dir / kCheckpointFile, checkpoint, options_.write_delay), root_);
}

StatusOr<v1::CheckpointRecord> CheckpointStore::LoadCheckpoint(const std::string& id) const {
  BF_RETURN_IF_ERROR(ValidateId(id));
  v1::CheckpointRecord checkpoint;
  const Status status =
      ReadRecord(fs::path(root_) / kModelsDir / id / kCheckpointFile, &checkpoint);
  if (status.code() == StatusCode::kNotFound) {
    return NotFoundError("model '" + id + "' has no checkpoint");
  }
  BF_RETURN_IF_ERROR(Relative(status, root_));
  return checkpoint;
}

Status CheckpointStore::DeleteModel(const std::string& id) {
  BF_RETURN_IF_ERROR(ValidateId(id));
  const fs::path dir = fs::path(root_) / kModelsDir / id;
  if (!IsDirectory(dir)) return NotFoundError(ModelPath(id) + ": no such model directory");
  return Relative(DeleteModelDirectory(dir), root_);
}

std::vector<StoredModel> CheckpointStore::LoadAll(std::vector<std::string>* problems,
                                                  std::vector<DamagedModel>* damaged) const {
  std::vector<std::string> discarded;
  if (problems == nullptr) problems = &discarded;
  const fs::path models = fs::path(root_) / kModelsDir;
  std::error_code ec;
  const std::vector<std::string> names = ListDirectory(models, &ec);
  if (ec) {
    problems->push_back(Relative(FilesystemError(ec, models, "list"), root_).message());
    return {};
  }
  std::vector<StoredModel> loaded;
  for (const std::string& id : names) {  // sorted, so `loaded` is sorted by id
    const fs::path dir = models / id;
    if (id.front() == '.') continue;  // temporary files, trash, the write probe
    if (!IsDirectory(dir) || !ValidateId(id).ok()) {
      problems->push_back(ModelPath(id) + ": not a model directory; ignored");
      continue;
    }
    StatusOr<StoredModel> model = LoadModel(dir, id);
    if (!model.ok()) {
      const Status damage = Relative(model.status(), root_);
      problems->push_back(damage.message() + "; model '" + id +
                          "' not loaded, its files are left as they are");
      if (damaged != nullptr) damaged->push_back({id, DataLossError(damage.message())});
      continue;
    }
    loaded.push_back(std::move(model).value());
  }
  return loaded;
}

}  // namespace backflow::server
