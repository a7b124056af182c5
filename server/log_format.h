// The server's log formats: text (spdlog's pattern, the default) or JSON lines for log
// collectors (--log-format=json).
//
// Note [JSON logs]
// ~~~~~~~~~~~~~~~~
// With --log-format=json every line on stderr is one JSON object:
//   {"time":"2026-12-07T04:31:43.566Z","level":"warning","msg":"listening on 127.0.0.1:50051"}
// and a request's line (server/call.h's CallLog) carries its fields as keys of their own, so a
// collector needs no parsing of the message:
//   {"time":...,"level":"warning","msg":"req 12 GetParameters ...","req":12,
//    "method":"GetParameters","model":"m-0a1b2c3d4e5f","peer":"ipv4:10.0.0.7:51234",
//    "code":"NOT_FOUND","ms":0.04}
// The fields reach the formatter through RequestLogFields, set on the logging thread around the
// one spdlog call (spdlog 1.10 has no mapped diagnostic context of its own; the server's logger is
// synchronous, so the formatter runs on that thread). Strings are escaped as JSON requires, and a
// byte that is not part of valid UTF-8 is written as \u00XX, so every line parses.
#ifndef BACKFLOW_SERVER_LOG_FORMAT_H_
#define BACKFLOW_SERVER_LOG_FORMAT_H_

#include <spdlog/formatter.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace backflow::server {

// The fields of the request whose line the current thread is logging, while this lives.
class RequestLogFields {
 public:
  struct Fields {
    int64_t id = 0;
    std::string_view method;
    std::string_view model;  // empty: a call on no model
    std::string_view peer;
    std::string_view code;
    double ms = 0;
  };
  // Copies `fields` (the views must outlive this object).
  explicit RequestLogFields(const Fields& fields);
  ~RequestLogFields();
  RequestLogFields(const RequestLogFields&) = delete;
  RequestLogFields& operator=(const RequestLogFields&) = delete;
  // The fields set on this thread, or null.
  static const Fields* Current();

 private:
  const Fields fields_;
  const Fields* const previous_;
};

// `text` as a JSON string literal, quotes included, appended to `out`.
void AppendJsonString(std::string_view text, std::string* out);

// The formatter of --log-format=json (one object per line).
std::unique_ptr<spdlog::formatter> JsonLogFormatter();

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_LOG_FORMAT_H_
