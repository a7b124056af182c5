// The token file, the digest lookup and the per-call check (server/auth/tokens.h, policy.h).
#include "server/auth/tokens.h"

#include <gtest/gtest.h>

#include "server/auth/policy.h"

namespace backflow::server::auth {
namespace {

// SHA-256("abc"), the FIPS 180-2 test vector.
constexpr char kAbcDigest[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::string Line(std::string_view token, std::string_view rest) {
  return "sha256:" + ToHex(Sha256(token)) + " " + std::string(rest) + "\n";
}

TokenTable Table(const std::string& text) {
  StatusOr<TokenTable> table = TokenTable::Parse(text, "tokens.txt");
  EXPECT_TRUE(table.ok()) << table.status().ToString();
  return table.ok() ? std::move(*table) : TokenTable();
}

TEST(TokensTest, Sha256MatchesTheStandardVector) { EXPECT_EQ(ToHex(Sha256("abc")), kAbcDigest); }

TEST(TokensTest, ParsesRolesOptionsAndComments) {
  const TokenTable table =
      Table("# a comment\n\n" + Line("reader", "read   # trailing comment") +
            Line("trainer", "train name=team-a prefix=team-a/ max-models=4 max-in-flight=8") +
            Line("root", "admin name=ops"));
  ASSERT_EQ(table.size(), 3u);
  const Token* reader = table.Find("reader");
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->role, Role::kRead);
  EXPECT_EQ(reader->name, ToHex(Sha256("reader")).substr(0, 8));
  const Token* trainer = table.Find("trainer");
  ASSERT_NE(trainer, nullptr);
  EXPECT_EQ(trainer->role, Role::kTrain);
  EXPECT_EQ(trainer->name, "team-a");
  EXPECT_EQ(trainer->model_prefix, "team-a/");
  EXPECT_EQ(trainer->max_models, 4);
  EXPECT_EQ(trainer->max_in_flight, 8);
  EXPECT_EQ(table.Find("root")->role, Role::kAdmin);
  EXPECT_EQ(table.Find("Reader"), nullptr);
  EXPECT_EQ(table.Find(""), nullptr);
  EXPECT_EQ(table.Find(ToHex(Sha256("reader"))), nullptr);  // the digest is not the token
}

TEST(TokensTest, RefusesMalformedLinesNamingTheLine) {
  const std::string good = Line("a", "read");
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {good + "secret-token read\n", "tokens.txt:2: expected sha256:<64 hex digits> first"},
      {"sha256:" + std::string(63, 'a') + " read\n", "tokens.txt:1: expected sha256:"},
      {"sha256:" + std::string(64, 'g') + " read\n", "tokens.txt:1: expected sha256:"},
      {Line("b", ""), "tokens.txt:1: no role"},
      {Line("b", "root"), "tokens.txt:1: unknown role 'root' (known: read, train, admin)"},
      {Line("b", "read colour=red"), "tokens.txt:1: unknown option 'colour'"},
      {Line("b", "read max-models=-1"), "max-models takes a count (0 or more), not '-1'"},
      {Line("b", "read prefix="), "tokens.txt:1: prefix is empty"},
      {good + Line("a", "train"), "tokens.txt:2: a repeated token"},
      {Line("a", "read name=x") + Line("b", "read name=x"), "a second token named 'x'"},
  };
  for (const Case& c : cases) {
    StatusOr<TokenTable> table = TokenTable::Parse(c.text, "tokens.txt");
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_EQ(table.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(table.status().message().find(c.message), std::string::npos)
        << table.status().message();
  }
  EXPECT_EQ(Table("").size(), 0u);
}

TEST(TokensTest, ReadsBearerHeaders) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("  bearer   abc  "), "abc");
  EXPECT_EQ(BearerToken("BEARER abc"), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer a b"), std::nullopt);
  EXPECT_EQ(BearerToken("abc"), std::nullopt);
}

TEST(PolicyTest, EachRoleReachesExactlyItsMethods) {
  const TokenTable table =
      Table(Line("r", "read name=r") + Line("t", "train name=t") + Line("a", "admin name=a"));
  const std::vector<std::pair<std::string, Role>> methods = {{"Infer", Role::kRead},
                                                             {"Evaluate", Role::kRead},
                                                             {"CheckGradients", Role::kRead},
                                                             {"GetModel", Role::kRead},
                                                             {"ListModels", Role::kRead},
                                                             {"GetParameters", Role::kRead},
                                                             {"ExportModel", Role::kRead},
                                                             {"TrainStep", Role::kTrain},
                                                             {"Train", Role::kTrain},
                                                             {"ComputeGradients", Role::kTrain},
                                                             {"SetParameters", Role::kTrain},
                                                             {"SaveCheckpoint", Role::kTrain},
                                                             {"RestoreCheckpoint", Role::kTrain},
                                                             {"CreateModel", Role::kAdmin},
                                                             {"DeleteModel", Role::kAdmin},
                                                             {"SomethingNew", Role::kAdmin}};
  for (const auto& [rpc, needed] : methods) {
    EXPECT_EQ(RequiredRole(rpc), needed) << rpc;
    for (const auto& [token, role] : std::vector<std::pair<std::string, Role>>{
             {"r", Role::kRead}, {"t", Role::kTrain}, {"a", Role::kAdmin}}) {
      const Decision decision = Authorize(table, "Bearer " + token, rpc, std::nullopt);
      if (role >= needed) {
        EXPECT_TRUE(decision.status.ok()) << rpc << " " << token << decision.status.ToString();
      } else {
        EXPECT_EQ(decision.status.code(), StatusCode::kPermissionDenied) << rpc << " " << token;
        EXPECT_EQ(decision.status.message(), "token '" + token + "' has role " +
                                                 std::string(RoleName(role)) + "; " + rpc +
                                                 " needs " + std::string(RoleName(needed)));
      }
    }
  }
}

TEST(PolicyTest, MissingMalformedAndUnknownTokensAreUnauthenticated) {
  const TokenTable table = Table(Line("secret", "admin"));
  const Decision none = Authorize(table, std::nullopt, "Infer", std::nullopt);
  EXPECT_EQ(none.status.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(none.status.message().find("the server requires a token"), std::string::npos);
  EXPECT_NE(none.status.message().find("BACKFLOW_TOKEN"), std::string::npos);
  EXPECT_EQ(Authorize(table, "secret", "Infer", std::nullopt).status.code(),
            StatusCode::kUnauthenticated);
  const Decision wrong = Authorize(table, "Bearer secreT", "Infer", std::nullopt);
  EXPECT_EQ(wrong.status.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.status.message(), "unknown token");
  EXPECT_EQ(wrong.token, nullptr);
  EXPECT_TRUE(Authorize(table, "Bearer secret", "DeleteModel", std::nullopt).status.ok());
}

TEST(PolicyTest, PrefixesLimitModelsButNotAdminsOrStatelessCalls) {
  const TokenTable table =
      Table(Line("a-team", "train name=a prefix=team-a/") + Line("ops", "admin prefix=x/"));
  EXPECT_TRUE(Authorize(table, "Bearer a-team", "TrainStep", "team-a/mnist").status.ok());
  const Decision other = Authorize(table, "Bearer a-team", "Infer", "team-b/mnist");
  EXPECT_EQ(other.status.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(other.status.message(),
            "token 'a' is limited to models named 'team-a/...'; this model is named "
            "'team-b/mnist'");
  EXPECT_TRUE(Authorize(table, "Bearer a-team", "Evaluate", std::nullopt).status.ok());
  EXPECT_TRUE(Authorize(table, "Bearer ops", "DeleteModel", "team-b/mnist").status.ok());
  const Token* team = table.Find("a-team");
  EXPECT_TRUE(MaySee(*team, "team-a/x"));
  EXPECT_FALSE(MaySee(*team, "team-ab"));
  EXPECT_TRUE(MaySee(*table.Find("ops"), "anything"));
}

}  // namespace
}  // namespace backflow::server::auth
