// backflow: the command-line client of backflow-server.
//
//   backflow [--server HOST:PORT] [--timeout SECONDS] [--token TOKEN] [--tls-ca FILE]
//            [--tls-cert FILE --tls-key FILE] COMMAND [ARGS...]
//
// main finds the command (one word, or a group and a subcommand: "models create"), parses its
// flags (the global ones are accepted anywhere on the line) and runs it. Exit codes: 0 success,
// 1 a failed call or file, 2 a usage error. docs/cli.md is the manual.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "clients/cli/session.h"
#include "clients/common/rpc.h"

namespace backflow::cli {
namespace {

constexpr std::string_view kDefaultServer = "127.0.0.1:50051";
constexpr double kDefaultTimeoutSeconds = 60;

const FlagSpec kGlobalFlags[] = {
    {"server", FlagKind::kValue, "HOST:PORT",
     "server address (default 127.0.0.1:50051 or $BACKFLOW_SERVER)"},
    {"timeout", FlagKind::kValue, "SECONDS",
     "deadline of each call and of each answer of a stream (default 60)"},
    {"token", FlagKind::kValue, "TOKEN",
     "sent as 'authorization: Bearer TOKEN' (default $BACKFLOW_TOKEN)"},
    {"tls-ca", FlagKind::kValue, "FILE",
     "use TLS, trusting the server certificates this PEM CA signed\n(default $BACKFLOW_TLS_CA)"},
    {"tls-cert", FlagKind::kValue, "FILE",
     "client certificate for mutual TLS (default $BACKFLOW_TLS_CERT)"},
    {"tls-key", FlagKind::kValue, "FILE", "its private key (default $BACKFLOW_TLS_KEY)"},
    {"help", FlagKind::kSwitch, "", "show help and exit"},
};

std::vector<Command> AllCommands() {
  std::vector<Command> all;
  for (auto group : {HealthCommands, ModelCommands, ParamCommands, CheckpointCommands,
                     CheckpointTransferCommands, InferCommands, EvalCommands, GradcheckCommands,
                     TrainCommands, ProfileCommands, GraphCommands, TokenCommands}) {
    for (Command& command : group()) all.push_back(std::move(command));
  }
  return all;
}

void PrintMainHelp(const std::vector<Command>& commands) {
  std::printf(
      "backflow: the command-line client of backflow-server\n\n"
      "Usage: backflow [--server HOST:PORT] [--timeout SECONDS] COMMAND [ARGS...]\n\n"
      "Commands:\n");
  for (const Command& command : commands) {
    std::string left = "  " + std::string(command.name) + " " + std::string(command.operands);
    left.resize(std::max<size_t>(left.size() + 1, 36), ' ');
    std::printf("%s%.*s\n", left.c_str(), static_cast<int>(command.summary.size()),
                command.summary.data());
  }
  std::printf("\nGlobal flags (accepted anywhere on the line):\n%s\n",
              clients::FormatFlags(kGlobalFlags).c_str());
  std::printf("'backflow COMMAND --help' shows a command's flags; docs/cli.md has examples.\n");
}

void PrintCommandHelp(const Command& command) {
  std::string usage = "backflow " + std::string(command.name);
  if (!command.operands.empty()) usage += " " + std::string(command.operands);
  if (!command.flags.empty()) usage += " [FLAGS]";
  std::printf("Usage: %s\n\n%.*s\n", usage.c_str(), static_cast<int>(command.summary.size()),
              command.summary.data());
  if (!command.details.empty()) {
    std::printf("\n%.*s", static_cast<int>(command.details.size()), command.details.data());
  }
  if (!command.flags.empty()) {
    std::printf("\nFlags:\n%s", clients::FormatFlags(command.flags).c_str());
  }
  std::printf("\nGlobal flags:\n%s", clients::FormatFlags(kGlobalFlags).c_str());
}

// The command named by args[*next] (and args[*next + 1] for a group), advancing *next past the
// words; nullptr after printing help or a usage error into *exit_code.
const Command* FindCommand(const std::vector<Command>& commands,
                           const std::vector<std::string>& args, size_t* next, int* exit_code) {
  const std::string& word = args[*next];
  std::string subcommands;
  for (const Command& command : commands) {
    if (command.name == word) {
      *next += 1;
      return &command;
    }
    if (command.name.starts_with(word + " ")) {
      subcommands +=
          (subcommands.empty() ? "" : ", ") + std::string(command.name.substr(word.size() + 1));
    }
  }
  if (subcommands.empty()) {
    std::vector<std::string_view> names;
    for (const Command& command : commands) {
      names.push_back(command.name.substr(0, command.name.find(' ')));
    }
    const std::string_view closest = clients::ClosestName(word, names);
    *exit_code = UsageError(
        "", "unknown command '" + word + "'" +
                (closest.empty() ? "" : "; did you mean '" + std::string(closest) + "'?"));
    return nullptr;
  }
  const bool has_sub = *next + 1 < args.size() && !args[*next + 1].starts_with("-");
  const std::string full = has_sub ? word + " " + args[*next + 1] : word;
  for (const Command& command : commands) {
    if (command.name == full) {
      *next += 2;
      return &command;
    }
  }
  if (!has_sub && *next + 1 < args.size() &&
      (args[*next + 1] == "--help" || args[*next + 1] == "-h")) {
    std::printf("Usage: backflow %s {%s} ...\n", word.c_str(), subcommands.c_str());
    *exit_code = kExitOk;
    return nullptr;
  }
  std::vector<std::string_view> names;
  for (const Command& command : commands) {
    if (command.name.starts_with(word + " ")) names.push_back(command.name.substr(word.size() + 1));
  }
  const std::string_view closest = has_sub ? clients::ClosestName(args[*next + 1], names) : "";
  *exit_code = UsageError(
      word, has_sub ? "unknown subcommand '" + args[*next + 1] + "' (one of: " + subcommands + ")" +
                          (closest.empty() ? "" : "; did you mean '" + std::string(closest) + "'?")
                    : "missing subcommand (one of: " + subcommands + ")");
  return nullptr;
}

// Parses the command's arguments and runs it with a Session built from the global flags
// (`leading` holds those given before the command; later ones win).
int RunCommand(const Command& command, const Args& leading, std::span<const std::string> rest) {
  std::vector<FlagSpec> specs = command.flags;
  specs.insert(specs.end(), std::begin(kGlobalFlags), std::end(kGlobalFlags));
  StatusOr<Args> args = clients::ParseArgs(rest, specs);
  if (!args.ok()) return UsageError(command.name, args.status().message());
  if (args->Has("help")) {
    PrintCommandHelp(command);
    return kExitOk;
  }
  const int operands = static_cast<int>(args->operands().size());
  if (operands < command.min_operands) {
    return UsageError(command.name, "missing " + std::string(command.operands));
  }
  if (command.max_operands >= 0 && operands > command.max_operands) {
    return UsageError(
        command.name,
        "unexpected operand '" + args->operands()[static_cast<size_t>(command.max_operands)] + "'");
  }
  const char* env_server = std::getenv("BACKFLOW_SERVER");
  StatusOr<std::string> server = clients::ServerAddress(
      args->Value("server", leading.Value("server", env_server ? env_server : kDefaultServer)));
  if (!server.ok()) {
    return UsageError(command.name, std::string(args->Has("server") || leading.Has("server")
                                                    ? "--server: "
                                                    : "BACKFLOW_SERVER: ") +
                                        server.status().message());
  }
  StatusOr<double> timeout = leading.Number("timeout", kDefaultTimeoutSeconds);
  if (timeout.ok() && args->Has("timeout")) timeout = args->Number("timeout", *timeout);
  if (!timeout.ok()) return UsageError(command.name, timeout.status().message());
  auto pick = [&](std::string_view flag, const char* variable) {
    return args->Value(flag, leading.Value(flag, clients::FromEnvironment(variable)));
  };
  clients::ChannelOptions channel{.token = pick("token", "BACKFLOW_TOKEN")};
  const Status tls = clients::ReadTlsFiles(pick("tls-ca", "BACKFLOW_TLS_CA"),
                                           pick("tls-cert", "BACKFLOW_TLS_CERT"),
                                           pick("tls-key", "BACKFLOW_TLS_KEY"), &channel);
  if (!tls.ok()) return UsageError(command.name, tls.message());
  Session session(*server, *timeout, std::move(channel));
  return command.run(session, *args);
}

int Main(const std::vector<std::string>& argv) {
  const std::vector<Command> commands = AllCommands();
  size_t next = 0;  // global flags first, up to the command word
  while (next < argv.size() && argv[next].starts_with("-")) {
    next +=
        argv[next].find('=') == std::string::npos && argv[next] != "--help" && argv[next] != "-h"
            ? 2
            : 1;
  }
  StatusOr<Args> leading =
      clients::ParseArgs(std::span(argv).first(std::min(next, argv.size())), kGlobalFlags);
  if (!leading.ok()) return UsageError("", leading.status().message());
  if (leading->Has("help")) {
    PrintMainHelp(commands);
    return kExitOk;
  }
  if (next >= argv.size()) {
    return UsageError("",
                      "missing COMMAND (health, models, params, checkpoint, infer, eval, "
                      "train)");
  }
  int exit_code = kExitUsage;
  const Command* command = FindCommand(commands, argv, &next, &exit_code);
  if (command == nullptr) return exit_code;
  return RunCommand(*command, *leading, std::span(argv).subspan(next));
}

}  // namespace
}  // namespace backflow::cli

int main(int argc, char** argv) {
  return backflow::cli::Main(std::vector<std::string>(argv + 1, argv + argc));
}
