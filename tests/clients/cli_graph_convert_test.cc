// backflow graph convert: text, binary and JSON graphs round-trip to the same message, the graph
// is checked on the way (the node and the reason named), and usage errors exit 2.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "engine/api/import.h"
#include "tests/clients/cli_fixture.h"
#include "tests/testing/temp_dir.h"

namespace backflow::testing {
namespace {

const std::string kLeNet = std::string(BACKFLOW_SOURCE_DIR) + "/models/lenet5.pbtxt";

TEST(CliGraphConvertTest, TextBinaryAndJsonRoundTrip) {
  TempDir dir;
  const std::string json = dir.path() + "/lenet5.json";
  const std::string binary = dir.path() + "/lenet5.pb";
  const std::string text = dir.path() + "/again.pbtxt";
  for (const auto& [from, to] :
       {std::pair{kLeNet, json}, std::pair{json, binary}, std::pair{binary, text}}) {
    const CliResult r = RunCli({"graph", "convert", from, to});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("wrote " + to), std::string::npos) << r.err;
  }
  const StatusOr<v1::Graph> original = LoadGraphText(kLeNet);
  ASSERT_TRUE(original.ok());
  std::ifstream in(binary, std::ios::binary);
  v1::Graph decoded;
  ASSERT_TRUE(decoded.ParseFromIstream(&in));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(decoded, *original));
  const StatusOr<v1::Graph> round_trip = LoadGraphText(text);
  ASSERT_TRUE(round_trip.ok()) << round_trip.status().ToString();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*round_trip, *original));
  // JSON uses protobuf's JSON mapping: lowerCamelCase names, enums by name.
  std::ifstream json_in(json);
  const std::string json_text((std::istreambuf_iterator<char>(json_in)), {});
  EXPECT_NE(json_text.find("\"placeholders\""), std::string::npos);
  EXPECT_NE(json_text.find("\"name\": \"images\""), std::string::npos);
}

TEST(CliGraphConvertTest, ChecksTheGraphUnlessToldNot) {
  TempDir dir;
  const std::string bad = dir.path() + "/bad.pbtxt";
  std::ofstream(bad) << "placeholders { name: 'x' shape: [2] }\n"
                        "nodes { name: 'y' op: 'no_such_gate' inputs: 'x' }\noutputs: 'y'\n";
  const std::string out = dir.path() + "/bad.json";
  CliResult r = RunCli({"graph", "convert", bad, out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no_such_gate"), std::string::npos) << r.err;
  EXPECT_FALSE(std::ifstream(out).good());
  r = RunCli({"graph", "convert", "--no-check", bad, out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::ifstream(out).good());
}

TEST(CliGraphConvertTest, UsageAndFileErrors) {
  TempDir dir;
  CliResult r = RunCli({"graph", "convert", kLeNet, dir.path() + "/x", "--to", "yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown encoding 'yaml'"), std::string::npos) << r.err;
  r = RunCli({"graph", "convert", kLeNet});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = RunCli({"graph", "convert", dir.path() + "/missing.pb", dir.path() + "/x.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.pb"), std::string::npos) << r.err;
  std::ofstream(dir.path() + "/junk.pb") << "\xff\xff\xff";
  r = RunCli({"graph", "convert", dir.path() + "/junk.pb", dir.path() + "/x.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a binary backflow.v1.Graph"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace backflow::testing
