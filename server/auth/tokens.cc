// Token file parsing and constant-time lookup (tokens.h).
#include "server/auth/tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace backflow::server::auth {
namespace {

constexpr std::string_view kDigestPrefix = "sha256:";

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

std::optional<Digest> ParseDigest(std::string_view text) {
  if (!text.starts_with(kDigestPrefix)) return std::nullopt;
  text.remove_prefix(kDigestPrefix.size());
  Digest digest{};
  if (text.size() != 2 * digest.size()) return std::nullopt;
  for (size_t i = 0; i < digest.size(); ++i) {
    const char* begin = text.data() + 2 * i;
    auto [end, error] = std::from_chars(begin, begin + 2, digest[i], 16);
    if (error != std::errc() || end != begin + 2) return std::nullopt;
  }
  return digest;
}

std::optional<int64_t> ParseCount(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// One `key=value` option into `token`; the problem otherwise.
std::optional<std::string> ApplyOption(std::string_view option, Token& token) {
  const size_t equals = option.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return "expected KEY=VALUE, not '" + std::string(option) + "'";
  }
  const std::string_view key = option.substr(0, equals);
  const std::string_view value = option.substr(equals + 1);
  if (key == "name" || key == "prefix") {
    if (value.empty()) return std::string(key) + " is empty";
    (key == "name" ? token.name : token.model_prefix) = std::string(value);
    return std::nullopt;
  }
  if (key == "max-models" || key == "max-in-flight") {
    const std::optional<int64_t> count = ParseCount(value);
    if (!count)
      return std::string(key) + " takes a count (0 or more), not '" + std::string(value) + "'";
    (key == "max-models" ? token.max_models : token.max_in_flight) = *count;
    return std::nullopt;
  }
  return "unknown option '" + std::string(key) +
         "' (known: name, prefix, max-models, max-in-flight)";
}

StatusOr<Token> ParseLine(const std::vector<std::string_view>& fields) {
  Token token;
  const std::optional<Digest> digest = ParseDigest(fields[0]);
  if (!digest) {
    return InvalidArgumentError(
        "expected sha256:<64 hex digits> first (the token's digest, "
        "never the token itself)");
  }
  token.digest = *digest;
  if (fields.size() < 2) return InvalidArgumentError("no role (read, train or admin)");
  const std::optional<Role> role = ParseRole(fields[1]);
  if (!role) {
    return InvalidArgumentError("unknown role '" + std::string(fields[1]) +
                                "' (known: read, train, admin)");
  }
  token.role = *role;
  for (size_t i = 2; i < fields.size(); ++i) {
    if (std::optional<std::string> problem = ApplyOption(fields[i], token)) {
      return InvalidArgumentError(*problem);
    }
  }
  if (token.name.empty()) token.name = ToHex(token.digest).substr(0, 8);
  return token;
}

}  // namespace

Digest Sha256(std::string_view text) {
  Digest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

std::string ToHex(const Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t byte : digest) {
    hex += kHex[byte >> 4];
    hex += kHex[byte & 15];
  }
  return hex;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRead:
      return "read";
    case Role::kTrain:
      return "train";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role role : {Role::kRead, Role::kTrain, Role::kAdmin}) {
    if (name == RoleName(role)) return role;
  }
  return std::nullopt;
}

StatusOr<TokenTable> TokenTable::Parse(std::string_view text, std::string_view source) {
  TokenTable table;
  std::set<Digest> digests;
  std::set<std::string> names;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    ++line_number;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    const std::vector<std::string_view> fields = Fields(line);
    if (fields.empty()) continue;
    const std::string where = std::string(source) + ":" + std::to_string(line_number) + ": ";
    StatusOr<Token> token = ParseLine(fields);
    if (!token.ok()) return InvalidArgumentError(where + token.status().message());
    if (!digests.insert(token->digest).second)
      return InvalidArgumentError(where + "a repeated token");
    if (!names.insert(token->name).second) {
      return InvalidArgumentError(where + "a second token named '" + token->name + "'");
    }
    table.tokens_.push_back(std::move(*token));
  }
  return table;
}

const Token* TokenTable::Find(std::string_view presented) const {
  const Digest digest = Sha256(presented);
  const Token* found = nullptr;
  for (const Token& token : tokens_) {
    const bool equal = CRYPTO_memcmp(token.digest.data(), digest.data(), digest.size()) == 0;
    found = equal ? &token : found;
  }
  return found;
}

std::optional<std::string_view> BearerToken(std::string_view header) {
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return std::nullopt;
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  if (header.empty() || header.find(' ') != std::string_view::npos) return std::nullopt;
  return header;
}

}  // namespace backflow::server::auth
