#include "server/evaluate_cache.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace backflow::server {
namespace {

// Appends `name` with its length first, so that no two lists of names make the same bytes.
void AppendName(const std::string& name, std::string* key) {
  key->append(std::to_string(name.size())).append(":").append(name);
}

}  // namespace

std::optional<std::string> EvaluateCache::KeyOf(const v1::EvaluateRequest& request) const {
  if (capacity_ == 0 || request.graph().ByteSizeLong() > kMaxGraphBytes) return std::nullopt;
  std::string key;
  {
    // Deterministic: the graph's maps (attributes) in key order, so equal graphs give equal bytes.
    google::protobuf::io::StringOutputStream stream(&key);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!request.graph().SerializeToCodedStream(&coded)) return std::nullopt;
  }
  key.append("\n");
  for (const std::string& output : request.outputs()) AppendName(output, &key);
  key.append("\n");
  AppendName(request.target(), &key);
  key.append("\n");
  for (const std::string& wrt : request.wrt()) AppendName(wrt, &key);
  return key;
}

std::shared_ptr<const PreparedEvaluation> EvaluateCache::Find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  order_.splice(order_.begin(), order_, it->second.position);
  return it->second.prepared;
}

void EvaluateCache::Insert(std::string key, std::shared_ptr<const PreparedEvaluation> prepared) {
  std::lock_guard<std::mutex> lock(mu_);
  if (capacity_ == 0 || entries_.count(key) != 0) return;
  if (entries_.size() >= capacity_) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(key);
  entries_.emplace(std::move(key), Entry{std::move(prepared), order_.begin()});
}

EvaluateCache::Stats EvaluateCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {.hits = hits_.load(),
          .misses = misses_.load(),
          .entries = static_cast<int64_t>(entries_.size())};
}

}  // namespace backflow::server
