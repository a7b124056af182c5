#include "server/log_format.h"

#include <spdlog/details/log_msg.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace backflow::server {
namespace {

thread_local const RequestLogFields::Fields* current_fields = nullptr;

// The length of the valid UTF-8 sequence at the start of `text`, or 0 if there is none.
size_t Utf8Length(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  if (lead >= 0xc2 && lead <= 0xdf)
    length = 2;
  else if (lead >= 0xe0 && lead <= 0xef)
    length = 3;
  else if (lead >= 0xf0 && lead <= 0xf4)
    length = 4;
  if (length == 0 || text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
  }
  // No overlong forms, no surrogates, nothing past U+10FFFF.
  if ((lead == 0xe0 && byte(1) < 0xa0) || (lead == 0xed && byte(1) > 0x9f) ||
      (lead == 0xf0 && byte(1) < 0x90) || (lead == 0xf4 && byte(1) > 0x8f)) {
    return 0;
  }
  return length;
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = "{\"time\":";
    AppendJsonString(Timestamp(msg.time), &line);
    line += ",\"level\":";
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    AppendJsonString(std::string_view(level.data(), level.size()), &line);
    line += ",\"msg\":";
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), &line);
    if (const RequestLogFields::Fields* fields = RequestLogFields::Current()) {
      line += ",\"req\":" + std::to_string(fields->id) + ",\"method\":";
      AppendJsonString(fields->method, &line);
      if (!fields->model.empty()) {
        line += ",\"model\":";
        AppendJsonString(fields->model, &line);
      }
      line += ",\"peer\":";
      AppendJsonString(fields->peer, &line);
      line += ",\"code\":";
      AppendJsonString(fields->code, &line);
      char ms[32];
      std::snprintf(ms, sizeof ms, ",\"ms\":%.3f", fields->ms);
      line += ms;
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  // RFC 3339 in UTC with milliseconds: 2026-12-07T04:31:43.566Z.
  static std::string Timestamp(std::chrono::system_clock::time_point time) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() %
        1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(millis));
    return text;
  }
};

}  // namespace

RequestLogFields::RequestLogFields(const Fields& fields)
    : fields_(fields), previous_(current_fields) {
  current_fields = &fields_;
}

RequestLogFields::~RequestLogFields() { current_fields = previous_; }

const RequestLogFields::Fields* RequestLogFields::Current() { return current_fields; }

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      if (const size_t length = Utf8Length(text.substr(i)); length > 0) {
        out->append(text.substr(i, length));
        i += length;
        continue;
      }
    }
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          *out += escaped;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter() { return std::make_unique<JsonFormatter>(); }

}  // namespace backflow::server
