#include "server/storage/checkpoint_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <utility>

#include "server/storage/store_files.h"

namespace backflow::server {
namespace {

namespace fs = std::filesystem;

// One model's files. A missing checkpoint is normal (never saved); any other failure is not.
StatusOr<StoredModel> LoadModel(const fs::path& dir, const std::string& id) {
  StoredModel model;
  const fs::path model_file = dir / kModelFile;
  BF_RETURN_IF_ERROR(ReadRecord(model_file, &model.record));
  if (model.record.id() != id) {
    return DataLossError(model_file.string() + ": holds model id '" + model.record.id() +
                         "', not its directory's name");
  }
  BF_ASSIGN_OR_RETURN(const CheckpointListing listing, ScanCheckpoints(dir));
  BF_ASSIGN_OR_RETURN(const CheckpointEntry* current, CurrentEntry(dir, listing));
  if (current == nullptr) return model;
  BF_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, ReadEntry(dir, *current));
  model.checkpoint = std::move(loaded.record);
  model.checkpoint_path = EntryPath(dir, *current).string();
  return model;
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

Status CheckpointStore::CreateModel(const v1::ModelRecord& record) {
  BF_RETURN_IF_ERROR(ValidateId(record.id()));
  return Relative(CreateModelFiles(fs::path(root_) / kModelsDir, record, options_.write_delay),
                  root_);
}

StatusOr<StoredCheckpoint> CheckpointStore::SaveCheckpoint(const std::string& id,
                                                           const v1::CheckpointRecord& checkpoint,
                                                           const std::string& name, bool replace) {
  BF_RETURN_IF_ERROR(ValidateId(id));
  if (!name.empty()) BF_RETURN_IF_ERROR(ValidateCheckpointName(name));
  const fs::path dir = fs::path(root_) / kModelsDir / id;
  if (!IsDirectory(dir)) return NotFoundError(ModelPath(id) + ": no such model directory");
  StatusOr<StoredCheckpoint> saved = SaveCheckpointFiles(dir, id, checkpoint, name, replace);
  if (saved.ok()) saved->path = RelativePath(saved->path);
  return Relative(std::move(saved), root_);
}

StatusOr<StoredCheckpoint> CheckpointStore::SaveCheckpointFiles(
    const fs::path& dir, const std::string& id, const v1::CheckpointRecord& checkpoint,
    const std::string& name, bool replace) const {
  BF_ASSIGN_OR_RETURN(const CheckpointListing listing, ScanCheckpoints(dir));
  std::vector<CheckpointEntry> obsolete;
  for (const CheckpointEntry& entry : listing.stale) {
    if (entry.name == name) obsolete.push_back(entry);
  }
  if (!name.empty()) {
    for (const CheckpointEntry& entry : listing.entries) {
      if (entry.name != name) continue;
      if (!replace) {
        return AlreadyExistsError("model '" + id + "' already has a checkpoint named '" + name +
                                  "' (replace it with replace=true, or delete it first)");
      }
      obsolete.push_back(entry);
    }
  }
  const fs::path checkpoints = dir / kCheckpointsDir;
  std::error_code ec;
  if (fs::create_directory(checkpoints, ec)) BF_RETURN_IF_ERROR(SyncDirectory(dir.string()));
  if (ec) return FilesystemError(ec, checkpoints, "create directory");
  const CheckpointEntry entry{CheckpointFileName(listing.max_sequence + 1, name), name,
                              listing.max_sequence + 1};
  const fs::path path = EntryPath(dir, entry);
  BF_ASSIGN_OR_RETURN(
      const int64_t bytes,
      WriteCheckpointFile(path.string(), checkpoint,
                          {.model_id = id, .name = name, .sequence = entry.sequence},
                          options_.write_delay));
  if (Status head = WriteHead(dir, entry); !head.ok()) {
    fs::remove(path, ec);  // the model stays at its previous checkpoint
    return head;
  }
  // Automatic checkpoints past the newest keep_automatic, the new one among them.
  int automatic = name.empty() ? 1 : 0;
  for (auto it = listing.entries.rbegin(); it != listing.entries.rend(); ++it) {
    if (it->name.empty() && ++automatic > options_.keep_automatic) obsolete.push_back(*it);
  }
  RemoveEntries(dir, obsolete);
  return StoredCheckpoint{.path = path.string(),
                          .name = name,
                          .sequence = entry.sequence,
                          .step = checkpoint.step(),
                          .saved_unix_ms = checkpoint.saved_unix_ms(),
                          .bytes = bytes,
                          .current = true};
}

StatusOr<LoadedCheckpoint> CheckpointStore::LoadCheckpoint(
    const std::string& id, const CheckpointSelector& selector) const {
  BF_ASSIGN_OR_RETURN(const fs::path dir, SelectionDirectory(id, selector));
  StatusOr<LoadedCheckpoint> loaded = LoadSelected(dir, id, selector);
  if (loaded.ok()) loaded->info.path = RelativePath(loaded->info.path);
  return Relative(std::move(loaded), root_);
}

StatusOr<fs::path> CheckpointStore::SelectionDirectory(const std::string& id,
                                                       const CheckpointSelector& selector) const {
  BF_RETURN_IF_ERROR(ValidateId(id));
  if (!selector.name.empty()) BF_RETURN_IF_ERROR(ValidateCheckpointName(selector.name));
  fs::path dir = fs::path(root_) / kModelsDir / id;
  if (!IsDirectory(dir)) return NotFoundError(ModelPath(id) + ": no such model directory");
  return dir;
}

StatusOr<LoadedCheckpoint> CheckpointStore::LoadSelected(const fs::path& dir, const std::string& id,
                                                         const CheckpointSelector& selector) const {
  BF_ASSIGN_OR_RETURN(const CheckpointListing listing, ScanCheckpoints(dir));
  BF_ASSIGN_OR_RETURN(const CheckpointEntry* current, CurrentEntry(dir, listing));
  BF_ASSIGN_OR_RETURN(const CheckpointEntry* chosen,
                      SelectEntry(dir, id, listing, current, selector));
  BF_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, ReadEntry(dir, *chosen));
  loaded.info.path = EntryPath(dir, *chosen).string();
  loaded.info.current = chosen == current;
  return loaded;
}

Status CheckpointStore::SetCurrent(const std::string& id, const std::string& path) {
  BF_RETURN_IF_ERROR(ValidateId(id));
  const fs::path dir = fs::path(root_) / kModelsDir / id;
  BF_ASSIGN_OR_RETURN(const CheckpointListing listing, ScanCheckpoints(dir));
  for (const CheckpointEntry& entry : listing.entries) {
    if (RelativePath(EntryPath(dir, entry).string()) == path) {
      return Relative(WriteHead(dir, entry), root_);
    }
  }
  return NotFoundError(path + ": no such checkpoint");
}

StatusOr<std::vector<StoredCheckpoint>> CheckpointStore::ListCheckpoints(
    const std::string& id) const {
  BF_RETURN_IF_ERROR(ValidateId(id));
  const fs::path dir = fs::path(root_) / kModelsDir / id;
  if (!IsDirectory(dir)) return NotFoundError(ModelPath(id) + ": no such model directory");
  BF_ASSIGN_OR_RETURN(const CheckpointListing listing, Relative(ScanCheckpoints(dir), root_));
  BF_ASSIGN_OR_RETURN(const CheckpointEntry* current, Relative(CurrentEntry(dir, listing), root_));
  std::vector<StoredCheckpoint> infos;
  for (const CheckpointEntry& entry : listing.entries) {
    StoredCheckpoint& info = infos.emplace_back();
    const Status read = ReadEntryInfo(dir, entry, &info);
    if (!read.ok()) info.damage = Relative(read, root_).message();
    info.path = RelativePath(EntryPath(dir, entry).string());
    info.current = &entry == current;
  }
  return infos;
}

Status CheckpointStore::DeleteCheckpoint(const std::string& id, const std::string& name) {
  BF_RETURN_IF_ERROR(ValidateId(id));
  BF_RETURN_IF_ERROR(ValidateCheckpointName(name));
  const fs::path dir = fs::path(root_) / kModelsDir / id;
  if (!IsDirectory(dir)) return NotFoundError(ModelPath(id) + ": no such model directory");
  BF_ASSIGN_OR_RETURN(const CheckpointListing listing, Relative(ScanCheckpoints(dir), root_));
  BF_ASSIGN_OR_RETURN(const CheckpointEntry* current, Relative(CurrentEntry(dir, listing), root_));
  for (const CheckpointEntry& entry : listing.entries) {
    if (entry.name != name) continue;
    if (&entry == current) {
      return FailedPreconditionError(
          "checkpoint '" + name + "' is the one model '" + id +
          "' is at (what a restart loads); save or restore another checkpoint first");
    }
    const fs::path path = EntryPath(dir, entry);
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) return Relative(FilesystemError(ec, path, "remove"), root_);
    std::vector<CheckpointEntry> stale;
    for (const CheckpointEntry& older : listing.stale) {
      if (older.name == name) stale.push_back(older);
    }
    RemoveEntries(dir, stale);
    return Relative(SyncDirectory((dir / kCheckpointsDir).string()), root_);
  }
  return NotFoundError("model '" + id + "' has no checkpoint named '" + name + "'");
}

std::string CheckpointStore::RelativePath(const std::string& path) const {
  const std::string prefix = root_ + "/";
  return path.starts_with(prefix) ? path.substr(prefix.size()) : path;
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
    model->checkpoint_path = RelativePath(model->checkpoint_path);
    loaded.push_back(std::move(model).value());
  }
  return loaded;
}

}  // namespace backflow::server
