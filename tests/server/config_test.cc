#include "server/config.h"

#include <gtest/gtest.h>

namespace backflow::server {
namespace {

StatusOr<ServerConfig> Parse(std::vector<std::string> args, bool* help = nullptr) {
  bool ignored = false;
  return ParseFlags(args, help ? help : &ignored);
}

TEST(ConfigTest, DefaultsNeedNoSetup) {
  StatusOr<ServerConfig> config = Parse({});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->listen, "127.0.0.1:50051");
  EXPECT_EQ(config->data_dir, "backflow-data");
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->compute_threads, 0);
  EXPECT_EQ(config->limits.max_models, 64);
  EXPECT_EQ(config->stream_idle_timeout.count(), 60);
}

TEST(ConfigTest, MetricsListenDefaultsToLoopbackAndEmptyTurnsItOff) {
  StatusOr<ServerConfig> config = Parse({});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->metrics_listen, "127.0.0.1:9464");
  EXPECT_TRUE(config->metrics_listen_defaulted);
  config = Parse({"--metrics-listen="});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->metrics_listen, "");
  EXPECT_FALSE(config->metrics_listen_defaulted);
  for (const std::string address : {"0.0.0.0:9100", "[::1]:0", "localhost:9464"}) {
    config = Parse({"--metrics-listen=" + address});
    ASSERT_TRUE(config.ok()) << address << ": " << config.status().ToString();
    EXPECT_EQ(config->metrics_listen, address);
    EXPECT_FALSE(config->metrics_listen_defaulted);
  }
  for (const std::string bad : {"9464", "127.0.0.1", "127.0.0.1:70000", "http://x:1", ":9464"}) {
    config = Parse({"--metrics-listen=" + bad});
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find("'" + bad + "' is not HOST:PORT"), std::string::npos)
        << config.status().message();
  }
  EXPECT_NE(Usage().find("--metrics-listen=HOST:PORT"), std::string::npos) << Usage();
}

TEST(ConfigTest, LogFormatIsTextOrJson) {
  EXPECT_EQ(Parse({})->log_format, "text");
  EXPECT_EQ(Parse({"--log-format=json"})->log_format, "json");
  StatusOr<ServerConfig> config = Parse({"--log-format=xml"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("--log-format"), std::string::npos)
      << config.status().message();
  EXPECT_NE(Usage().find("--log-format=FORMAT"), std::string::npos) << Usage();
}

TEST(ConfigTest, StreamIdleTimeoutIsInSecondsAndZeroDisablesIt) {
  StatusOr<ServerConfig> config = Parse({"--stream-idle-timeout=5"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->stream_idle_timeout, std::chrono::seconds(5));
  config = Parse({"--stream-idle-timeout=0"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->stream_idle_timeout.count(), 0);
  EXPECT_EQ(Parse({"--stream-idle-timeout=-1"}).status().message(),
            "--stream-idle-timeout: -1 is outside [0, 86400]");
  EXPECT_NE(Usage().find("--stream-idle-timeout=N"), std::string::npos);
  EXPECT_NE(Usage().find("0: never (default 60)"), std::string::npos) << Usage();
}

TEST(ConfigTest, DynamicBatchingDefaultsOnWithoutDelayAndOneRowTurnsItOff) {
  StatusOr<ServerConfig> config = Parse({});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->max_batch_rows, 256);
  EXPECT_EQ(config->batch_delay.count(), 0);
  config = Parse({"--max-batch-rows=1", "--batch-delay-us=500"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->max_batch_rows, 1);
  EXPECT_EQ(config->batch_delay, std::chrono::microseconds(500));
  bool off = false;
  for (const std::string& line : Describe(*config)) {
    off = off || line.find("batch_delay_us=500 (dynamic batching off)") != std::string::npos;
  }
  EXPECT_TRUE(off);
  EXPECT_EQ(Parse({"--max-batch-rows=0"}).status().message(),
            "--max-batch-rows: 0 is outside [1, 1099511627776]");
  EXPECT_EQ(Parse({"--batch-delay-us=2000000"}).status().message(),
            "--batch-delay-us: 2000000 is outside [0, 1000000]");
}

TEST(ConfigTest, AutomaticCheckpointsDefaultToAMinuteAndZeroTurnsThemOff) {
  StatusOr<ServerConfig> config = Parse({});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->autosave.every_seconds, std::chrono::seconds(60));
  EXPECT_EQ(config->autosave.every_steps, 0);
  EXPECT_TRUE(config->autosave.enabled());
  config = Parse({"--checkpoint-every-steps=500", "--checkpoint-every-seconds=0"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->autosave.every_steps, 500);
  EXPECT_EQ(config->autosave.every_seconds.count(), 0);
  EXPECT_TRUE(config->autosave.enabled());
  config = Parse({"--checkpoint-every-seconds=0"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_FALSE(config->autosave.enabled());
  bool off = false;
  for (const std::string& line : Describe(*config)) {
    off = off || line.find("(automatic checkpoints off)") != std::string::npos;
  }
  EXPECT_TRUE(off);
  EXPECT_EQ(Parse({"--checkpoint-every-steps=-5"}).status().message(),
            "--checkpoint-every-steps: -5 is outside [0, 1099511627776]");
  EXPECT_NE(Usage().find("--checkpoint-every-seconds=N"), std::string::npos) << Usage();
}

TEST(ConfigTest, BothFlagSpellingsSetValues) {
  StatusOr<ServerConfig> config =
      Parse({"--listen=0.0.0.0:9000", "--insecure", "--data-dir", "/var/lib/backflow",
             "--max-models=3", "--stream-window", "2", "--log-level=debug",
             "--shutdown-grace-ms=1500", "--compute-threads=2", "--max-tensor-elements=1000"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->listen, "0.0.0.0:9000");
  EXPECT_EQ(config->data_dir, "/var/lib/backflow");
  EXPECT_EQ(config->limits.max_models, 3);
  EXPECT_EQ(config->limits.stream_window, 2);
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->shutdown_grace.count(), 1500);
  EXPECT_EQ(config->compute_threads, 2);
  EXPECT_EQ(config->limits.max_tensor_elements, 1000);
}

TEST(ConfigTest, ErrorsNameTheFlag) {
  // The unified format of clients/common/flags.h (was "unknown flag --bogus (see --help)").
  EXPECT_EQ(Parse({"--bogus=1"}).status().message(), "unknown flag '--bogus'");
  EXPECT_EQ(Parse({"--max-model=3"}).status().message(),
            "unknown flag '--max-model'; did you mean '--max-models'?");
  EXPECT_EQ(Parse({"--max-models=ten"}).status().message(),
            "--max-models: 'ten' is not an integer");
  EXPECT_EQ(Parse({"--max-models=0"}).status().message(),
            "--max-models: 0 is outside [1, 1099511627776]");
  EXPECT_EQ(Parse({"--listen=50051"}).status().message(), "--listen: '50051' is a port alone; give HOST:PORT ('127.0.0.1:50051')");
  EXPECT_EQ(Parse({"--log-level=loud"}).status().message(),
            "--log-level: 'loud' is not one of trace, debug, info, warn, error, off");
  // Was "--data-dir: missing value".
  EXPECT_EQ(Parse({"--data-dir"}).status().message(), "--data-dir needs a value (DIR)");
  EXPECT_EQ(Parse({"serve"}).status().message(), "unexpected argument 'serve'");
  EXPECT_EQ(Parse({"--bogus"}).status().code(), StatusCode::kInvalidArgument);
}

// Off loopback, tokens or an explicit --insecure (docs/security.md).
TEST(ConfigTest, ANonLoopbackAddressNeedsTokensOrInsecure) {
  for (const char* loopback : {"127.0.0.1:0", "127.1.2.3:50051", "localhost:1", "[::1]:50051"}) {
    EXPECT_TRUE(IsLoopback(loopback)) << loopback;
    EXPECT_TRUE(Parse({std::string("--listen=") + loopback}).ok()) << loopback;
  }
  for (const char* open : {"0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "myhost:50051"}) {
    EXPECT_FALSE(IsLoopback(open)) << open;
    StatusOr<ServerConfig> refused = Parse({std::string("--listen=") + open});
    ASSERT_FALSE(refused.ok()) << open;
    EXPECT_EQ(refused.status().message(),
              std::string("--listen ") + open +
                  " is reachable from other machines, and without tokens anyone who reaches it "
                  "may read, train and delete every model: add --auth-tokens FILE "
                  "(docs/security.md), or --insecure to serve without tokens anyway");
    EXPECT_TRUE(Parse({std::string("--listen=") + open, "--insecure"}).ok()) << open;
    StatusOr<ServerConfig> tokens = Parse({std::string("--listen=") + open, "--auth-tokens=t"});
    ASSERT_TRUE(tokens.ok()) << open;
    EXPECT_EQ(tokens->auth_tokens, "t");
    EXPECT_FALSE(tokens->insecure);
  }
}

// The files themselves are checked at start-up (auth::CheckTlsFiles), not while parsing.
TEST(ConfigTest, TlsFlagsFillTheTlsFiles) {
  StatusOr<ServerConfig> plain = Parse({});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tls.enabled());
  EXPECT_EQ(plain->tls.reload_seconds, 10);
  StatusOr<ServerConfig> config =
      Parse({"--tls-cert=/etc/backflow/server.pem", "--tls-key", "/etc/backflow/server.key",
             "--tls-client-ca=/etc/backflow/ca.pem", "--tls-reload-seconds=60"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->tls.cert, "/etc/backflow/server.pem");
  EXPECT_EQ(config->tls.key, "/etc/backflow/server.key");
  EXPECT_EQ(config->tls.client_ca, "/etc/backflow/ca.pem");
  EXPECT_EQ(config->tls.reload_seconds, 60);
  EXPECT_TRUE(config->tls.mutual());
  const std::vector<std::string> lines = Describe(*config);
  EXPECT_EQ(lines.back(),
            "tls=/etc/backflow/server.pem key=/etc/backflow/server.key "
            "client_ca=/etc/backflow/ca.pem reload_s=60");
  EXPECT_EQ(Parse({"--tls-cert="}).status().message(), "--tls-cert: empty");
  EXPECT_NE(Usage().find("--tls-client-ca=FILE"), std::string::npos) << Usage();
}

TEST(ConfigTest, ARepeatedFlagKeepsItsLastValue) {
  StatusOr<ServerConfig> config = Parse({"--max-models=3", "--max-models", "5"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->limits.max_models, 5);
}

TEST(ConfigTest, HelpAndDescription) {
  bool help = false;
  ASSERT_TRUE(Parse({"--help"}, &help).ok());
  EXPECT_TRUE(help);
  EXPECT_NE(Usage().find("--max-pending-requests=N"), std::string::npos);
  EXPECT_NE(Usage().find("(default 127.0.0.1:50051;"), std::string::npos) << Usage();
  std::vector<std::string> lines = Describe(ServerConfig{});
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "listen=127.0.0.1:50051");
}

}  // namespace
}  // namespace backflow::server
