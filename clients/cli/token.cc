// backflow token new: a fresh random token and the --auth-tokens line that grants it a role
// (docs/security.md). The server stores only the line: the token is shown once, here.
#include <cstdio>
#include <fstream>
#include <string>

#include "clients/cli/session.h"
#include "server/auth/tokens.h"

namespace backflow::cli {
namespace {

constexpr size_t kTokenBytes = 32;  // 256 bits from the kernel's CSPRNG

StatusOr<std::string> RandomToken() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[kTokenBytes];
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes)) {
    return UnavailableError("cannot read /dev/urandom");
  }
  static constexpr char kAlphabet[] = "0123456789abcdef";
  std::string token = "bf_";
  for (unsigned char byte : bytes) {
    token += kAlphabet[byte >> 4];
    token += kAlphabet[byte & 15];
  }
  return token;
}

int RunTokenNew(Session&, const Args& args) {
  const std::string role = args.Value("role", "read");
  if (!server::auth::ParseRole(role)) {
    return UsageError("token new", "--role is read, train or admin, not '" + role + "'");
  }
  std::string line;
  for (const char* option : {"name", "prefix", "max-models", "max-in-flight"}) {
    if (args.Has(option)) line += std::string(" ") + option + "=" + args.Value(option);
  }
  StatusOr<std::string> token = RandomToken();
  if (!token.ok()) return Fail("token new", token.status());
  const std::string entry =
      "sha256:" + server::auth::ToHex(server::auth::Sha256(*token)) + " " + role + line;
  // Check the line as the server will read it (a bad count, an empty name).
  if (StatusOr<server::auth::TokenTable> parsed =
          server::auth::TokenTable::Parse(entry, "the new line");
      !parsed.ok()) {
    return UsageError("token new", parsed.status().message());
  }
  std::printf("token: %s\nline:  %s\n", token->c_str(), entry.c_str());
  std::fprintf(stderr,
               "Add the line to the --auth-tokens file (the server re-reads it); give the token "
               "to the client (--token or BACKFLOW_TOKEN). It is not stored anywhere.\n");
  return kExitOk;
}

}  // namespace

std::vector<Command> TokenCommands() {
  return {{
      .name = "token new",
      .summary = "make a random token and its --auth-tokens line (no server needed)",
      .details = "Example: backflow token new --role train --name team-a --prefix team-a/\n",
      .flags = {{"role", FlagKind::kValue, "read|train|admin", "what it may do (default read)"},
                {"name", FlagKind::kValue, "NAME", "its name in logs and messages"},
                {"prefix", FlagKind::kValue, "PREFIX", "only models whose name starts so"},
                {"max-models", FlagKind::kValue, "N", "quota: models held at once"},
                {"max-in-flight", FlagKind::kValue, "N", "quota: requests in flight"}},
      .run = RunTokenNew,
  }};
}

}  // namespace backflow::cli
