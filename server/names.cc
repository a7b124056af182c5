#include "server/names.h"

#include <cstdio>

namespace backflow::server {

std::string Escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          char hex[5];
          std::snprintf(hex, sizeof(hex), "\\x%02x", byte);
          out += hex;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Quoted(std::string_view text) {
  if (text.size() <= kMaxEchoBytes) return "'" + Escaped(text) + "'";
  size_t cut = kMaxEchoBytes;
  // Back to the start of a UTF-8 character (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;
  return "'" + Escaped(text.substr(0, cut)) + "...' (" + std::to_string(text.size()) + " bytes)";
}

Status CheckLength(std::string_view what, std::string_view text, size_t limit) {
  if (text.size() <= limit) return Status::Ok();
  return ResourceExhaustedError(std::string(what) + " " + Quoted(text) +
                                ": longer than the limit of " + std::to_string(limit) + " bytes");
}

Status CheckLengths(std::string_view what,
                    const google::protobuf::RepeatedPtrField<std::string>& names, size_t limit) {
  for (const std::string& name : names) BF_RETURN_IF_ERROR(CheckLength(what, name, limit));
  return Status::Ok();
}

}  // namespace backflow::server
