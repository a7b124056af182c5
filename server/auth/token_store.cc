// TokenStore (token_store.h).
#include "server/auth/token_store.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

namespace backflow::server::auth {
namespace {

constexpr std::chrono::seconds kCheckEvery{1};

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

StatusOr<TokenTable> ReadTable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("--auth-tokens " + path + ": cannot open it");
  std::ostringstream text;
  text << in.rdbuf();
  return TokenTable::Parse(text.str(), path);
}

}  // namespace

std::optional<TokenStore::Stamp> TokenStore::StampOf(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return std::nullopt;
  return Stamp{static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec,
               static_cast<int64_t>(info.st_size)};
}

TokenStore::TokenStore(std::string path, std::shared_ptr<const TokenTable> table, Stamp stamp)
    : path_(std::move(path)), table_(std::move(table)), stamp_(stamp) {
  next_check_ns_ = SteadyNowNs() + std::chrono::nanoseconds(kCheckEvery).count();
}

StatusOr<std::unique_ptr<TokenStore>> TokenStore::Open(std::string path) {
  const std::optional<Stamp> stamp = StampOf(path);
  StatusOr<TokenTable> table = ReadTable(path);
  if (!table.ok()) return table.status();
  return std::unique_ptr<TokenStore>(
      new TokenStore(std::move(path), std::make_shared<const TokenTable>(std::move(*table)),
                     stamp.value_or(Stamp{})));
}

void TokenStore::ReloadIfChanged() {
  const std::optional<Stamp> stamp = StampOf(path_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (stamp && *stamp == stamp_) return;
  stamp_ = stamp.value_or(Stamp{});
  StatusOr<TokenTable> table = ReadTable(path_);
  if (!table.ok()) {
    spdlog::error("--auth-tokens: keeping the previous {} tokens: {}", table_->size(),
                  table.status().message());
    return;
  }
  table_ = std::make_shared<const TokenTable>(std::move(*table));
  spdlog::info("--auth-tokens {}: reloaded, {} tokens", path_, table_->size());
}

std::shared_ptr<const TokenTable> TokenStore::Current() {
  const int64_t now = SteadyNowNs();
  int64_t due = next_check_ns_.load(std::memory_order_relaxed);
  if (now >= due && next_check_ns_.compare_exchange_strong(
                        due, now + std::chrono::nanoseconds(kCheckEvery).count())) {
    ReloadIfChanged();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return table_;
}

TokenStore::Checked TokenStore::Check(std::optional<std::string_view> authorization,
                                      std::string_view rpc,
                                      std::optional<std::string_view> model_name) {
  std::shared_ptr<const TokenTable> table = Current();
  Decision decision = Authorize(*table, authorization, rpc, model_name);
  return {std::move(decision.status), decision.token, std::move(table)};
}

InFlightSlot& InFlightSlot::operator=(InFlightSlot&& other) noexcept {
  if (this != &other) {
    Release();
    store_ = std::exchange(other.store_, nullptr);
    token_name_ = std::move(other.token_name_);
  }
  return *this;
}

void InFlightSlot::Release() {
  if (store_ != nullptr) std::exchange(store_, nullptr)->ReleaseInFlight(token_name_);
}

StatusOr<InFlightSlot> TokenStore::AdmitInFlight(std::optional<std::string_view> authorization) {
  const std::optional<std::string_view> bearer =
      authorization ? BearerToken(*authorization) : std::nullopt;
  if (!bearer) return InFlightSlot();
  const std::shared_ptr<const TokenTable> table = Current();
  const Token* token = table->Find(*bearer);
  if (token == nullptr || token->max_in_flight <= 0) return InFlightSlot();
  std::lock_guard<std::mutex> lock(in_flight_mutex_);
  int64_t& count = in_flight_[token->name];
  if (count >= token->max_in_flight) {
    return ResourceExhaustedError("token '" + token->name + "' has " + std::to_string(count) +
                                  " requests in flight, its max-in-flight quota");
  }
  ++count;
  InFlightSlot slot;
  slot.store_ = this;
  slot.token_name_ = token->name;
  return slot;
}

void TokenStore::ReleaseInFlight(const std::string& token_name) {
  std::lock_guard<std::mutex> lock(in_flight_mutex_);
  auto it = in_flight_.find(token_name);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

}  // namespace backflow::server::auth
