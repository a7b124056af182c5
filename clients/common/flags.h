// The one command-line parser of every backflow binary (backflow, backflow-load, backflow-bench,
// backflow-server). Each binary declares its flags as FlagSpecs; ParseArgs splits argv into
// operands and flag values, GNU style: "--name value" or "--name=value", "--" ends the flags,
// "-h" is "--help".
//
// One rule for a repeated flag: a kValue flag given twice keeps the last value; a kList flag
// collects every value, in order; a kSwitch is on however often it is given.
//
// Every error is an InvalidArgument Status whose message names the flag, in one format:
//   unknown flag '--sise'; did you mean '--size'?
//   --batch needs a value (N)          --json takes no value
//   --batch: 'x' is not an integer     --rate: 'x' is not a number
//   --batch: 0 is outside [1, 16777216]
//   --rpc: 'stream' is not one of train, infer, gradients, evaluate, mixed
// and each binary prints it with PrintUsageError: "PROGRAM: MESSAGE", then
// "Try 'PROGRAM --help'.", exit code 2 (kExitUsage).
#ifndef BACKFLOW_CLIENTS_COMMON_FLAGS_H_
#define BACKFLOW_CLIENTS_COMMON_FLAGS_H_

#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"

namespace backflow::clients {

inline constexpr int kExitUsage = 2;

enum class FlagKind {
  kSwitch,  // --nesterov: present or not, takes no value
  kValue,   // --lr 0.01: one value; given twice, the last wins
  kList,    // --output a --output b: every value, in order
};

struct FlagSpec {
  std::string_view name;  // without the dashes: "lr"
  FlagKind kind;
  std::string_view value_name;  // for the help text and errors: "X", "NAME=FILE"
  std::string help;             // may hold '\n': later lines are indented to the help column
};

// The result of parsing: operands in order, and the values of the flags that were given.
class Args {
 public:
  const std::vector<std::string>& operands() const { return operands_; }
  bool Has(std::string_view flag) const { return values_.find(flag) != values_.end(); }
  // The last value given for `flag`, or `fallback`.
  std::string Value(std::string_view flag, std::string_view fallback = "") const;
  // Every value given for `flag` (empty if none).
  const std::vector<std::string>& Values(std::string_view flag) const;
  // Value(flag) parsed as a number / integer in [min, max]; `fallback` (unchecked) if absent.
  // InvalidArgument naming the flag if the text is not one or is out of range.
  StatusOr<double> Number(std::string_view flag, double fallback,
                          double min = std::numeric_limits<double>::lowest(),
                          double max = std::numeric_limits<double>::max()) const;
  StatusOr<int64_t> Integer(std::string_view flag, int64_t fallback,
                            int64_t min = std::numeric_limits<int64_t>::min(),
                            int64_t max = std::numeric_limits<int64_t>::max()) const;
  StatusOr<uint64_t> Unsigned(std::string_view flag, uint64_t fallback) const;
  // Value(flag, fallback), which must be one of `choices`.
  StatusOr<std::string> Choice(std::string_view flag, std::string_view fallback,
                               std::span<const std::string_view> choices) const;
  // Value(flag, fallback), which must not be empty / ServerAddress of it.
  StatusOr<std::string> NonEmpty(std::string_view flag, std::string_view fallback) const;
  StatusOr<std::string> Address(std::string_view flag, std::string_view fallback) const;
  // InvalidArgument "unexpected argument 'X'" for the first operand, if any.
  Status NoOperands() const;

  void AddOperand(std::string operand) { operands_.push_back(std::move(operand)); }
  void AddValue(std::string_view flag, std::string value);

 private:
  std::vector<std::string> operands_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// Parses `argv` (no program or command name) against `specs`. A switch given as "--x=...", a
// value flag at the end of argv and any flag not in `specs` are errors; an unknown flag's error
// suggests the closest spec name ("did you mean").
StatusOr<Args> ParseArgs(std::span<const std::string> argv, std::span<const FlagSpec> specs);

// Strict number parsing: the whole text must be the number ("1e-3", "-4.5"; "inf" is rejected).
StatusOr<double> ParseNumber(std::string_view text);
StatusOr<int64_t> ParseInteger(std::string_view text);

// A server address as gRPC takes it: "HOST:PORT" as given; a HOST alone gets the default port
// 50051 ("127.0.0.1" -> "127.0.0.1:50051", "[::1]" -> "[::1]:50051"); gRPC's own "dns:",
// "ipv4:", "ipv6:" and "unix:" targets pass unchanged. A URL scheme (http://, https://,
// grpc://) or a port that is not 0-65535 (0: any free port, for a server) is InvalidArgument saying what to write instead.
StatusOr<std::string> ServerAddress(std::string_view text);
inline constexpr int kDefaultPort = 50051;

// The candidate closest to `typed` (edit distance, at most a third of the longer name), or ""
// when none is close.
std::string_view ClosestName(std::string_view typed, std::span<const std::string_view> names);

// The spec name closest to `typed` (edit distance, at most a third of the longer name), or ""
// when none is close.
std::string_view ClosestFlag(std::string_view typed, std::span<const FlagSpec> specs);

// The help text's flag table, one entry per spec:
//   "  --lr X                    learning rate (default 0.01)"      (the default style)
//   "  --listen=HOST:PORT        address to serve on ..."           (equals = true)
// A left column wider than `column` pushes the help to the next line, aligned.
struct HelpStyle {
  bool equals = false;
  size_t column = 28;
};
std::string FormatFlags(std::span<const FlagSpec> specs, HelpStyle style = {});

// The whole file a flag names ("--tls-key FILE"); InvalidArgument "--FLAG PATH: cannot read it
// (REASON)" when it cannot be read.
StatusOr<std::string> ReadFlagFile(std::string_view flag, const std::string& path);

// Prints "PROGRAM: MESSAGE\nTry 'PROGRAM --help'.\n" on stderr and returns kExitUsage.
// PROGRAM is the binary with its command, if any: "backflow models list".
int PrintUsageError(std::string_view program, std::string_view message);

}  // namespace backflow::clients

#endif  // BACKFLOW_CLIENTS_COMMON_FLAGS_H_
