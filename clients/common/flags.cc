#include "clients/common/flags.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace backflow::clients {
namespace {

const FlagSpec* FindSpec(std::span<const FlagSpec> specs, std::string_view name) {
  for (const FlagSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

// Edit distance counting a swap of two neighbours as one edit (optimal string alignment:
// "shwo" is 1 from "show", as people mistype), three rows at a time.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> before(b.size() + 1), previous(b.size() + 1), row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      row[j] = std::min(
          {previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        row[j] = std::min(row[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, row);
  }
  return previous[b.size()];
}

Status UnknownFlag(const std::string& token, std::string_view name,
                   std::span<const FlagSpec> specs) {
  std::string message = "unknown flag '" + token + "'";
  const std::string_view closest = ClosestFlag(name, specs);
  if (!closest.empty()) message += "; did you mean '--" + std::string(closest) + "'?";
  return InvalidArgumentError(message);
}

std::string FlagError(std::string_view flag, const std::string& what) {
  return "--" + std::string(flag) + ": " + what;
}

std::string NumberText(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

// Args::Value(flag) parsed by `parse`, in [min, max]; `fallback` if the flag is absent.
template <typename T>
StatusOr<T> Ranged(const Args& args, std::string_view flag, T fallback, T min, T max,
                   StatusOr<T> (*parse)(std::string_view), std::string (*text)(T)) {
  if (!args.Has(flag)) return fallback;
  const std::string given = args.Value(flag);
  StatusOr<T> value = parse(given);
  if (!value.ok()) return value.status().WithPrefix("--" + std::string(flag));
  if (*value < min || *value > max) {
    return InvalidArgumentError(
        FlagError(flag, given + " is outside [" + text(min) + ", " + text(max) + "]"));
  }
  return value;
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

StatusOr<double> Args::Number(std::string_view flag, double fallback, double min,
                              double max) const {
  return Ranged<double>(*this, flag, fallback, min, max, ParseNumber, NumberText);
}

StatusOr<int64_t> Args::Integer(std::string_view flag, int64_t fallback, int64_t min,
                                int64_t max) const {
  return Ranged<int64_t>(*this, flag, fallback, min, max, ParseInteger,
                         [](int64_t v) { return std::to_string(v); });
}

StatusOr<uint64_t> Args::Unsigned(std::string_view flag, uint64_t fallback) const {
  if (!Has(flag)) return fallback;
  const std::string text = Value(flag);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return InvalidArgumentError(FlagError(flag, "'" + text + "' is not an integer"));
  }
  return value;
}

StatusOr<std::string> Args::Choice(std::string_view flag, std::string_view fallback,
                                   std::span<const std::string_view> choices) const {
  std::string value = Value(flag, fallback);
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
  std::string list;
  for (std::string_view choice : choices) list += (list.empty() ? "" : ", ") + std::string(choice);
  return InvalidArgumentError(FlagError(flag, "'" + value + "' is not one of " + list));
}

StatusOr<std::string> Args::NonEmpty(std::string_view flag, std::string_view fallback) const {
  std::string value = Value(flag, fallback);
  if (value.empty()) return InvalidArgumentError(FlagError(flag, "empty"));
  return value;
}

StatusOr<std::string> Args::Address(std::string_view flag, std::string_view fallback) const {
  StatusOr<std::string> address = ServerAddress(Value(flag, fallback));
  if (!address.ok()) return InvalidArgumentError(FlagError(flag, address.status().message()));
  return address;
}

StatusOr<std::string> ServerAddress(std::string_view text) {
  const std::string given(text);
  for (std::string_view target : {"dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:"}) {
    if (text.starts_with(target)) return given;
  }
  if (const size_t scheme = text.find("://"); scheme != std::string_view::npos) {
    std::string_view rest = text.substr(scheme + 3);
    rest = rest.substr(0, rest.find('/'));
    return InvalidArgumentError("'" + given + "' is a URL; give HOST:PORT without a scheme ('" +
                                std::string(rest) + "')");
  }
  const size_t bracket = text.rfind(']');
  const size_t colon = text.rfind(':');
  const bool has_port =
      colon != std::string_view::npos &&
      (bracket == std::string_view::npos ? text.find(':') == colon : colon > bracket);
  if (text.empty() ||
      (!has_port && bracket == std::string_view::npos && colon != std::string_view::npos)) {
    return InvalidArgumentError("'" + given + "' is not HOST:PORT (an IPv6 host goes in [])");
  }
  if (!has_port &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgumentError("'" + given +
                                "' is a port alone; give HOST:PORT ('127.0.0.1:" + given + "')");
  }
  if (!has_port) return given + ":" + std::to_string(kDefaultPort);
  const std::string_view port = text.substr(colon + 1);
  int64_t number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (error != std::errc() || end != port.data() + port.size() || number < 0 || number > 65535) {
    return InvalidArgumentError("'" + given + "': the port must be a number from 0 to 65535");
  }
  return given;
}

std::string_view ClosestName(std::string_view typed, std::span<const std::string_view> names) {
  std::string_view best;
  size_t best_distance = 0;
  for (std::string_view name : names) {
    const size_t distance = EditDistance(typed, name);
    const size_t allowed = std::max<size_t>(1, std::max(typed.size(), name.size()) / 3);
    if (distance <= allowed && (best.empty() || distance < best_distance)) {
      best = name;
      best_distance = distance;
    }
  }
  return best;
}

Status Args::NoOperands() const {
  if (operands_.empty()) return Status::Ok();
  return InvalidArgumentError("unexpected argument '" + operands_.front() + "'");
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
        return UnknownFlag(token, std::string_view(token).substr(1), specs);
      }
      args.AddOperand(token);  // including "-" and negative numbers
      continue;
    }
    const size_t equals = token.find('=');
    const std::string name = token.substr(2, equals == std::string::npos ? equals : equals - 2);
    const FlagSpec* spec = FindSpec(specs, name);
    if (spec == nullptr) return UnknownFlag("--" + name, name, specs);
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

std::string_view ClosestFlag(std::string_view typed, std::span<const FlagSpec> specs) {
  std::vector<std::string_view> names;
  for (const FlagSpec& spec : specs) names.push_back(spec.name);
  return ClosestName(typed, names);
}

std::string FormatFlags(std::span<const FlagSpec> specs, HelpStyle style) {
  const std::string indent(style.column, ' ');
  std::string text;
  for (const FlagSpec& spec : specs) {
    std::string left = "  --" + std::string(spec.name);
    if (spec.kind != FlagKind::kSwitch) {
      left += (style.equals ? "=" : " ") + std::string(spec.value_name);
    }
    if (spec.kind == FlagKind::kList) left += " ...";
    // Long flag names push the help to the next line, aligned.
    left +=
        left.size() < style.column ? std::string(style.column - left.size(), ' ') : "\n" + indent;
    std::string help = spec.help;
    for (size_t at = help.find('\n'); at != std::string::npos; at = help.find('\n', at + 1)) {
      help.insert(at + 1, indent);
    }
    text += left + help + "\n";
  }
  return text;
}

int PrintUsageError(std::string_view program, std::string_view message) {
  std::fprintf(stderr, "%.*s: %.*s\nTry '%.*s --help'.\n", static_cast<int>(program.size()),
               program.data(), static_cast<int>(message.size()), message.data(),
               static_cast<int>(program.size()), program.data());
  return kExitUsage;
}

StatusOr<std::string> ReadFlagFile(std::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgumentError("--" + std::string(flag) + " " + path + ": cannot read it (" +
                                std::strerror(errno) + ")");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace backflow::clients
