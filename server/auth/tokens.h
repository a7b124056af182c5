// Bearer tokens with roles (--auth-tokens FILE, docs/security.md). The file names each token by
// its SHA-256 digest, never in clear, with a role, an optional model-name prefix the token is
// limited to, and optional quotas:
//
//   # comments and blank lines are ignored
//   sha256:<64 hex digits> ROLE [name=LABEL] [prefix=NAME_PREFIX] [max-models=N] [max-in-flight=N]
//
// ROLE is read (Infer, Evaluate, CheckGradients, GetModel, ListModels, GetParameters,
// ExportModel), train (read plus TrainStep, Train, ComputeGradients, SetParameters and
// checkpoints) or admin (everything: CreateModel, DeleteModel, every model). Quotas apply to every
// role. `backflow token new` prints a fresh token and its line.
#ifndef BACKFLOW_SERVER_AUTH_TOKENS_H_
#define BACKFLOW_SERVER_AUTH_TOKENS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"

namespace backflow::server::auth {

using Digest = std::array<uint8_t, 32>;

// SHA-256 of `text` (OpenSSL), and its lowercase hex form.
Digest Sha256(std::string_view text);
std::string ToHex(const Digest& digest);

// Ordered: each role can do everything the ones before it can.
enum class Role { kRead = 0, kTrain = 1, kAdmin = 2 };
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

struct Token {
  Digest digest{};
  Role role = Role::kRead;
  std::string name;           // for logs and messages; defaults to the digest's first 8 hex digits
  std::string model_prefix;   // empty: every model (admin tokens ignore it)
  int64_t max_models = 0;     // models created by this token held at once; 0: no quota
  int64_t max_in_flight = 0;  // requests in flight; 0: no quota
};

// The parsed token file. Immutable once built; safe to share between threads.
class TokenTable {
 public:
  // InvalidArgument naming `source` and the line for any malformed line, an unknown role or
  // option, a repeated digest or name. An empty table is valid (every call then needs a token
  // that cannot exist, so only the open methods answer).
  static StatusOr<TokenTable> Parse(std::string_view text, std::string_view source);

  // The entry whose digest is SHA-256(`presented`), else nullptr. Compares the digest with every
  // entry in constant time (CRYPTO_memcmp, no early exit), so timing tells nothing.
  const Token* Find(std::string_view presented) const;

  size_t size() const { return tokens_.size(); }

 private:
  std::vector<Token> tokens_;
};

// The token of an `authorization` header value "Bearer TOKEN" (scheme case-insensitive,
// surrounding spaces ignored); nullopt for anything else.
std::optional<std::string_view> BearerToken(std::string_view header);

}  // namespace backflow::server::auth

#endif  // BACKFLOW_SERVER_AUTH_TOKENS_H_
