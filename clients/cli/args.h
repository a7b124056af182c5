// Command-line parsing for the backflow CLI: each command declares its flags as FlagSpecs, and
// ParseArgs splits argv into operands and flag values (grpcurl / GNU style: "--name value",
// "--name=value", "--" ends the flags, "-h" is "--help").
//
// Every error is a Status whose message is meant for a usage line ("unknown flag '--lr2'",
// "--epochs: 'x' is not an integer"); the CLI reports them with exit code 2.
#ifndef BACKFLOW_CLIENTS_CLI_ARGS_H_
#define BACKFLOW_CLIENTS_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"

namespace backflow::cli {

enum class FlagKind {
  kSwitch,  // --nesterov: present or not, takes no value
  kValue,   // --lr 0.01: one value; given twice, the last wins
  kList,    // --output a --output b: every value, in order
};

struct FlagSpec {
  std::string_view name;  // without the dashes: "lr"
  FlagKind kind;
  std::string_view value_name;  // for the help text: "X", "NAME=FILE"
  std::string_view help;
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
  // Value(flag) parsed as a number / integer, `fallback` if absent; InvalidArgument naming the
  // flag if the text is not one.
  StatusOr<double> Number(std::string_view flag, double fallback) const;
  StatusOr<int64_t> Integer(std::string_view flag, int64_t fallback) const;

  void AddOperand(std::string operand) { operands_.push_back(std::move(operand)); }
  void AddValue(std::string_view flag, std::string value);

 private:
  std::vector<std::string> operands_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

// Parses `argv` (no program or command name) against `specs`. A switch given as "--x=..." and a
// value flag at the end of argv are errors, as is any flag not in `specs`.
StatusOr<Args> ParseArgs(std::span<const std::string> argv, std::span<const FlagSpec> specs);

// Strict number parsing: the whole text must be the number ("1e-3", "-4.5", "inf" is rejected).
StatusOr<double> ParseNumber(std::string_view text);
StatusOr<int64_t> ParseInteger(std::string_view text);

// The help text's flag table: "  --lr X            learning rate (default 0.01)" per flag.
std::string FormatFlags(std::span<const FlagSpec> specs);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_ARGS_H_
