#include "server/storage/checkpoint_dir.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <string_view>
#include <system_error>
#include <utility>

#include "server/storage/atomic_file.h"
#include "server/storage/checkpoint_file.h"
#include "server/storage/store_files.h"

namespace backflow::server {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kAutoSuffix = ".auto.bfck";
constexpr std::string_view kNamedInfix = ".named.";
constexpr std::string_view kFileSuffix = ".bfck";
constexpr size_t kSequenceDigits = 12;

// The entry a file name in checkpoints/ stands for; nullopt for anything else.
std::optional<CheckpointEntry> ParseCheckpointFileName(const std::string& file) {
  if (file.size() <= kSequenceDigits) return std::nullopt;
  int64_t sequence = 0;
  const auto [end, ec] = std::from_chars(file.data(), file.data() + kSequenceDigits, sequence);
  if (ec != std::errc() || end != file.data() + kSequenceDigits || sequence <= 0) {
    return std::nullopt;
  }
  const std::string_view rest = std::string_view(file).substr(kSequenceDigits);
  if (rest == kAutoSuffix) return CheckpointEntry{file, "", sequence};
  if (!rest.starts_with(kNamedInfix) || !rest.ends_with(kFileSuffix)) return std::nullopt;
  std::string name(
      rest.substr(kNamedInfix.size(), rest.size() - kNamedInfix.size() - kFileSuffix.size()));
  if (!ValidateCheckpointName(name).ok()) return std::nullopt;
  return CheckpointEntry{file, std::move(name), sequence};
}

}  // namespace

namespace fs = std::filesystem;

Status ValidateCheckpointName(const std::string& name) {
  BF_RETURN_IF_ERROR(CheckPlainName(name, "checkpoint name", "."));
  // Not '.': no hidden files; not '-': no name a command line or a listing ("-" for an
  // automatic checkpoint) would misread.
  if (name.front() == '.' || name.front() == '-') {
    return InvalidArgumentError("checkpoint name '" + name + "' may not start with '.' or '-'");
  }
  return Status::Ok();
}

std::string CheckpointFileName(int64_t sequence, const std::string& name) {
  char digits[24];  // room for any int64_t
  std::snprintf(digits, sizeof(digits), "%012lld", static_cast<long long>(sequence));
  return name.empty()
             ? std::string(digits) + std::string(kAutoSuffix)
             : std::string(digits) + std::string(kNamedInfix) + name + std::string(kFileSuffix);
}

StatusOr<CheckpointListing> ScanCheckpoints(const fs::path& dir) {
  CheckpointListing listing;
  std::error_code ec;
  if (fs::exists(dir / kLegacyCheckpointFile, ec)) {
    listing.entries.push_back({kLegacyCheckpointFile, "", 0});
  }
  const fs::path checkpoints = dir / kCheckpointsDir;
  std::vector<std::string> files = ListDirectory(checkpoints, &ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return FilesystemError(ec, checkpoints, "list");
  }
  std::map<std::string, CheckpointEntry> newest_named;
  for (const std::string& file : files) {
    std::optional<CheckpointEntry> entry = ParseCheckpointFileName(file);
    if (!entry) continue;  // temporary files; anything an operator put there
    listing.max_sequence = std::max(listing.max_sequence, entry->sequence);
    if (entry->name.empty()) {
      listing.entries.push_back(std::move(*entry));
      continue;
    }
    auto [it, inserted] = newest_named.try_emplace(entry->name, *entry);
    if (!inserted) {
      CheckpointEntry older = std::move(*entry);
      if (older.sequence > it->second.sequence) std::swap(older, it->second);
      listing.stale.push_back(std::move(older));
    }
  }
  for (auto& [name, entry] : newest_named) listing.entries.push_back(std::move(entry));
  std::sort(
      listing.entries.begin(), listing.entries.end(),
      [](const CheckpointEntry& a, const CheckpointEntry& b) { return a.sequence < b.sequence; });
  return listing;
}

fs::path EntryPath(const fs::path& dir, const CheckpointEntry& entry) {
  return entry.legacy() ? dir / entry.file : dir / kCheckpointsDir / entry.file;
}

StatusOr<const CheckpointEntry*> CurrentEntry(const fs::path& dir,
                                              const CheckpointListing& listing) {
  v1::CheckpointHead head;
  const Status read = ReadRecord(dir / kHeadFile, &head);
  if (read.code() == StatusCode::kNotFound) {
    return listing.entries.empty() ? nullptr : &listing.entries.back();
  }
  BF_RETURN_IF_ERROR(read);
  for (const CheckpointEntry& entry : listing.entries) {
    if (entry.file == head.file()) return &entry;
  }
  return DataLossError((dir / kHeadFile).string() + ": names checkpoint '" + head.file() +
                       "', which is not in " + (dir / kCheckpointsDir).string());
}

Status WriteHead(const fs::path& dir, const CheckpointEntry& entry) {
  v1::CheckpointHead head;
  head.set_file(entry.file);
  return WriteRecord(dir / kHeadFile, head, {}).status();
}

StatusOr<LoadedCheckpoint> ReadEntry(const fs::path& dir, const CheckpointEntry& entry) {
  LoadedCheckpoint loaded;
  const fs::path path = EntryPath(dir, entry);
  if (entry.legacy()) {
    BF_RETURN_IF_ERROR(ReadRecord(path, &loaded.record));
  } else {
    v1::CheckpointManifest manifest;
    BF_ASSIGN_OR_RETURN(loaded.record, ReadCheckpointFile(path.string(), &manifest));
    if (manifest.sequence() != entry.sequence || manifest.name() != entry.name) {
      return DataLossError(path.string() + ": its manifest says checkpoint " +
                           std::to_string(manifest.sequence()) + " '" + manifest.name() +
                           "', not what its file name says");
    }
  }
  loaded.info.name = entry.name;
  loaded.info.sequence = entry.sequence;
  loaded.info.step = loaded.record.step();
  loaded.info.saved_unix_ms = loaded.record.saved_unix_ms();
  std::error_code ec;
  loaded.info.bytes = static_cast<int64_t>(fs::file_size(path, ec));
  return loaded;
}

StatusOr<const CheckpointEntry*> SelectEntry(const fs::path& dir, const std::string& id,
                                             const CheckpointListing& listing,
                                             const CheckpointEntry* current,
                                             const CheckpointSelector& selector) {
  const CheckpointEntry* chosen = nullptr;
  if (!selector.name.empty()) {
    for (const CheckpointEntry& entry : listing.entries) {
      if (entry.name == selector.name) chosen = &entry;
    }
    if (chosen == nullptr) {
      return NotFoundError("model '" + id + "' has no checkpoint named '" + selector.name + "'");
    }
  } else if (selector.step.has_value()) {
    // Newest first: the step of each is in its manifest. A damaged file is passed over here;
    // it is reported if nothing else matches, as restoring it is what the caller asked.
    Status damage = Status::Ok();
    for (auto it = listing.entries.rbegin(); it != listing.entries.rend() && !chosen; ++it) {
      StoredCheckpoint info;
      const Status read = ReadEntryInfo(dir, *it, &info);
      if (!read.ok() && damage.ok()) damage = read;
      if (read.ok() && info.step == *selector.step) chosen = &*it;
    }
    if (chosen == nullptr) {
      BF_RETURN_IF_ERROR(damage);
      return NotFoundError("model '" + id + "' has no checkpoint at step " +
                           std::to_string(*selector.step));
    }
  } else {
    if (current == nullptr) return NotFoundError("model '" + id + "' has no checkpoint");
    chosen = current;
  }
  return chosen;
}

Status ReadEntryInfo(const fs::path& dir, const CheckpointEntry& entry, StoredCheckpoint* info) {
  const fs::path path = EntryPath(dir, entry);
  info->name = entry.name;
  info->sequence = entry.sequence;
  std::error_code ec;
  info->bytes = static_cast<int64_t>(fs::file_size(path, ec));
  if (entry.legacy()) {
    v1::CheckpointRecord record;
    BF_RETURN_IF_ERROR(ReadRecord(path, &record));
    info->step = record.step();
    info->saved_unix_ms = record.saved_unix_ms();
    return Status::Ok();
  }
  BF_ASSIGN_OR_RETURN(const v1::CheckpointManifest manifest, ReadCheckpointManifest(path.string()));
  info->step = manifest.step();
  info->saved_unix_ms = manifest.saved_unix_ms();
  return Status::Ok();
}

void RemoveEntries(const fs::path& dir, const std::vector<CheckpointEntry>& entries) {
  if (entries.empty()) return;
  std::error_code ignored;
  for (const CheckpointEntry& entry : entries) fs::remove(EntryPath(dir, entry), ignored);
  (void)SyncDirectory((dir / kCheckpointsDir).string());
  (void)SyncDirectory(dir.string());
}

}  // namespace backflow::server
