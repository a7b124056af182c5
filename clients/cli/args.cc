#include "clients/cli/args.h"

#include <charconv>
#include <cmath>

namespace backflow::cli {
namespace {

const FlagSpec* FindSpec(std::span<const FlagSpec> specs, std::string_view name) {
  for (const FlagSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace

std::string Args::Value(std::string_view flag, std::string_view fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? std::string(fallback) : it->second.back();
}

const std::vector<std::string>& Args::Values(std::string_view flag) const {
  static const std::vector<std::string> kNone;
  auto it = values_.find(flag);
  return it == values_.end() ? kNone : it->second;
}

StatusOr<double> Args::Number(std::string_view flag, double fallback) const {
  if (!Has(flag)) return fallback;
  StatusOr<double> value = ParseNumber(Value(flag));
  if (!value.ok()) return value.status().WithPrefix("--" + std::string(flag));
  return value;
}

StatusOr<int64_t> Args::Integer(std::string_view flag, int64_t fallback) const {
  if (!Has(flag)) return fallback;
  StatusOr<int64_t> value = ParseInteger(Value(flag));
  if (!value.ok()) return value.status().WithPrefix("--" + std::string(flag));
  return value;
}

void Args::AddValue(std::string_view flag, std::string value) {
  values_[std::string(flag)].push_back(std::move(value));
}

StatusOr<Args> ParseArgs(std::span<const std::string> argv, std::span<const FlagSpec> specs) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& token = argv[i];
    if (token == "--") {
      for (++i; i < argv.size(); ++i) args.AddOperand(argv[i]);
      break;
    }
    if (token == "-h") {
      args.AddValue("help", "");
      continue;
    }
    if (!token.starts_with("--")) {
      if (token.size() > 1 && token[0] == '-' && !ParseNumber(token).ok()) {
        return InvalidArgumentError("unknown flag '" + token + "'");
      }
      args.AddOperand(token);  // including "-" and negative numbers
      continue;
    }
    const size_t equals = token.find('=');
    const std::string name = token.substr(2, equals == std::string::npos ? equals : equals - 2);
    const FlagSpec* spec = FindSpec(specs, name);
    if (spec == nullptr) return InvalidArgumentError("unknown flag '--" + name + "'");
    if (spec->kind == FlagKind::kSwitch) {
      if (equals != std::string::npos) {
        return InvalidArgumentError("--" + name + " takes no value");
      }
      args.AddValue(name, "");
    } else if (equals != std::string::npos) {
      args.AddValue(name, token.substr(equals + 1));
    } else if (i + 1 < argv.size()) {
      args.AddValue(name, argv[++i]);
    } else {
      return InvalidArgumentError("--" + name + " needs a value (" + std::string(spec->value_name) +
                                  ")");
    }
  }
  return args;
}

StatusOr<double> ParseNumber(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return InvalidArgumentError("'" + std::string(text) + "' is not a number");
  }
  return value;
}

StatusOr<int64_t> ParseInteger(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return InvalidArgumentError("'" + std::string(text) + "' is not an integer");
  }
  return value;
}

std::string FormatFlags(std::span<const FlagSpec> specs) {
  std::string text;
  for (const FlagSpec& spec : specs) {
    std::string left = "  --" + std::string(spec.name);
    if (spec.kind != FlagKind::kSwitch) left += " " + std::string(spec.value_name);
    if (spec.kind == FlagKind::kList) left += " ...";
    // Long flag names push the help to the next line, aligned.
    left += left.size() < 28 ? std::string(28 - left.size(), ' ') : "\n" + std::string(28, ' ');
    text += left + std::string(spec.help) + "\n";
  }
  return text;
}

}  // namespace backflow::cli
