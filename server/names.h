// Names clients send (model ids, model names, tensor and parameter names), as the server
// bounds them and echoes them in messages and logs.
//
// Every name has a length limit, and one over it is RESOURCE_EXHAUSTED, like every other limit.
// Messages never echo a name whole when it is long: Quoted() shows its first kMaxEchoBytes,
// escaped, and its length, so a megabyte-long id gives a short status (a long one would exceed
// the client's metadata limit and hide the error). Logs escape control characters, so a name
// holding a newline or a NUL can neither forge a log line nor reach the log raw.
#ifndef BACKFLOW_SERVER_NAMES_H_
#define BACKFLOW_SERVER_NAMES_H_

#include <google/protobuf/repeated_ptr_field.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "engine/core/status.h"

namespace backflow::server {

inline constexpr size_t kMaxModelIdBytes = 64;  // what the data directory accepts
inline constexpr size_t kMaxNameBytes = 256;  // model names, tensor and parameter names
inline constexpr size_t kMaxEchoBytes = 64;  // of a name, in a message

// `text` with backslashes, quotes and control characters escaped (\n, \r, \t, \\, \', \xNN for
// the rest of 0x00-0x1f and 0x7f); other bytes (UTF-8) as they are.
std::string Escaped(std::string_view text);
// "'text'" escaped; past kMaxEchoBytes, "'first bytes...' (N bytes)", cut on a UTF-8 character
// boundary.
std::string Quoted(std::string_view text);
// RESOURCE_EXHAUSTED "WHAT 'first bytes...' (N bytes): longer than the limit of LIMIT bytes"
// if `text` is longer than `limit`.
Status CheckLength(std::string_view what, std::string_view text, size_t limit);
// The same for each of `names`.
Status CheckLengths(std::string_view what, const google::protobuf::RepeatedPtrField<std::string>& names,
                    size_t limit);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_NAMES_H_
