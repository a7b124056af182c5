// TokenStore: the --auth-tokens file as the running server sees it, re-read when it changes on
// disk, so tokens can be added and revoked without a restart (docs/security.md).
#ifndef BACKFLOW_SERVER_AUTH_TOKEN_STORE_H_
#define BACKFLOW_SERVER_AUTH_TOKEN_STORE_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "server/auth/policy.h"
#include "server/auth/tokens.h"

namespace backflow::server::auth {

class TokenStore;

// A request in flight counted against its token's max-in-flight quota, until destroyed. Empty
// (counting nothing) for tokens without that quota.
class InFlightSlot {
 public:
  InFlightSlot() = default;
  InFlightSlot(InFlightSlot&& other) noexcept { *this = std::move(other); }
  InFlightSlot& operator=(InFlightSlot&& other) noexcept;
  ~InFlightSlot() { Release(); }
  void Release();

 private:
  friend class TokenStore;
  TokenStore* store_ = nullptr;
  std::string token_name_;
};

class TokenStore {
 public:
  // Reads and parses `path`; NotFound or InvalidArgument (naming the file and line) otherwise.
  static StatusOr<std::unique_ptr<TokenStore>> Open(std::string path);

  // The current table. At most once per second it checks the file's modification time and size
  // and, if either changed, parses it again: a good file replaces the table (logged at info), a
  // bad or missing one keeps the previous table (logged at error once per change). Thread-safe.
  std::shared_ptr<const TokenTable> Current();

  // Authorize() (policy.h) against the current table, which the result keeps alive while it
  // points into it.
  struct Checked {
    Status status;
    const Token* token = nullptr;  // the caller's entry when the token is known
    std::shared_ptr<const TokenTable> table;
  };
  Checked Check(std::optional<std::string_view> authorization, std::string_view rpc,
                std::optional<std::string_view> model_name);

  // Counts one more request in flight for the caller's token: ResourceExhausted naming the
  // token and its max-in-flight when it already has that many; an empty slot when the token is
  // unknown (the role check refuses it) or has no such quota. Thread-safe.
  StatusOr<InFlightSlot> AdmitInFlight(std::optional<std::string_view> authorization);

  const std::string& path() const { return path_; }

 private:
  struct Stamp {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    bool operator==(const Stamp&) const = default;
  };
  TokenStore(std::string path, std::shared_ptr<const TokenTable> table, Stamp stamp);
  static std::optional<Stamp> StampOf(const std::string& path);
  void ReloadIfChanged();

  friend class InFlightSlot;
  void ReleaseInFlight(const std::string& token_name);

  const std::string path_;
  std::mutex in_flight_mutex_;
  std::map<std::string, int64_t> in_flight_;  // guarded by in_flight_mutex_: token name -> count
  std::atomic<int64_t> next_check_ns_{0};     // steady clock; Current() looks at the file after it
  std::mutex mutex_;
  std::shared_ptr<const TokenTable> table_;  // guarded by mutex_
  Stamp stamp_;                              // guarded by mutex_: what table_ was read from
};

}  // namespace backflow::server::auth

#endif  // BACKFLOW_SERVER_AUTH_TOKEN_STORE_H_
