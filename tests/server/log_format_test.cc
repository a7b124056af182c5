// Note [JSON logs] in server/log_format.h: escaping, the line the formatter writes, and a
// request's fields.
#include "server/log_format.h"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include <chrono>
#include <string>

namespace backflow::server {
namespace {

std::string Json(std::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

TEST(LogFormatTest, StringsAreEscapedAsJsonRequires) {
  EXPECT_EQ(Json("plain"), "\"plain\"");
  EXPECT_EQ(Json("a \"quote\" and a \\ backslash"), "\"a \\\"quote\\\" and a \\\\ backslash\"");
  EXPECT_EQ(Json("line\nfeed\ttab\rreturn"), "\"line\\nfeed\\ttab\\rreturn\"");
  EXPECT_EQ(Json(std::string("nul\0bell\x07"
                             "del\x7f",
                             13)),
            "\"nul\\u0000bell\\u0007del\\u007f\"");
  // Valid UTF-8 stays as it is; a byte that is no part of it becomes \u00XX.
  EXPECT_EQ(Json("µs → 日本"), "\"µs → 日本\"");
  EXPECT_EQ(Json("bad \xff byte"), "\"bad \\u00ff byte\"");
  EXPECT_EQ(Json("cut \xe6\x97"), "\"cut \\u00e6\\u0097\"");            // a truncated sequence
  EXPECT_EQ(Json("overlong \xc0\xaf"), "\"overlong \\u00c0\\u00af\"");  // '/' in two bytes
  EXPECT_EQ(Json("surrogate \xed\xa0\x80"), "\"surrogate \\u00ed\\u00a0\\u0080\"");
}

spdlog::details::log_msg Message(spdlog::level::level_enum level, std::string_view payload) {
  spdlog::details::log_msg msg(spdlog::source_loc{}, "backflow", level,
                               spdlog::string_view_t(payload.data(), payload.size()));
  // 2026-12-07T05:51:02.114Z
  msg.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796622662114));
  return msg;
}

std::string Format(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t out;
  JsonLogFormatter()->format(msg, out);
  return std::string(out.data(), out.size());
}

TEST(LogFormatTest, ALineIsOneObjectWithTimeLevelAndMessage) {
  EXPECT_EQ(Format(Message(spdlog::level::info, "listening on 127.0.0.1:50051")),
            "{\"time\":\"2026-12-07T05:51:02.114Z\",\"level\":\"info\","
            "\"msg\":\"listening on 127.0.0.1:50051\"}\n");
  EXPECT_EQ(Format(Message(spdlog::level::warn, "say \"x\"\n")),
            "{\"time\":\"2026-12-07T05:51:02.114Z\",\"level\":\"warning\","
            "\"msg\":\"say \\\"x\\\"\\n\"}\n");
}

TEST(LogFormatTest, ARequestsLineCarriesItsFieldsWhileTheyAreSet) {
  const spdlog::details::log_msg msg = Message(spdlog::level::warn, "req 3 GetModel ...");
  {
    const RequestLogFields fields({.id = 3,
                                   .method = "GetModel",
                                   .model = "m-\"1\"",
                                   .peer = "ipv4:127.0.0.1:40312",
                                   .code = "NOT_FOUND",
                                   .ms = 0.0214});
    EXPECT_EQ(Format(msg),
              "{\"time\":\"2026-12-07T05:51:02.114Z\",\"level\":\"warning\","
              "\"msg\":\"req 3 GetModel ...\",\"req\":3,\"method\":\"GetModel\","
              "\"model\":\"m-\\\"1\\\"\",\"peer\":\"ipv4:127.0.0.1:40312\","
              "\"code\":\"NOT_FOUND\",\"ms\":0.021}\n");
    // A call on no model has no "model" key.
    const RequestLogFields inner(
        {.id = 4, .method = "Evaluate", .peer = "p", .code = "OK", .ms = 1.5});
    EXPECT_EQ(Format(msg).find("\"model\""), std::string::npos);
    EXPECT_NE(Format(msg).find("\"req\":4,\"method\":\"Evaluate\",\"peer\":\"p\""),
              std::string::npos);
  }
  EXPECT_EQ(RequestLogFields::Current(), nullptr);
  EXPECT_EQ(Format(msg).find("\"req\""), std::string::npos);
}

}  // namespace
}  // namespace backflow::server
