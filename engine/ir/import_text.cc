// The text-format half of engine/ir/import.h: reading graphs people write by hand.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "engine/ir/import.h"

namespace backflow {
namespace {

// Keeps the first error only: later ones are usually consequences of it.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!error_.empty()) return;
    // The parser counts from 0; editors count from 1. Negative means "no position".
    error_ = line < 0
                 ? message
                 : std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// Parses `text`; on failure `error` holds "LINE:COLUMN: MESSAGE".
bool ParseText(const std::string& text, backflow::v1::Graph* graph, std::string* error) {
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (parser.ParseFromString(text, graph)) return true;
  *error = errors.error().empty() ? std::string("does not parse") : errors.error();
  return false;
}

// "PREFIX:LINE:COLUMN: MESSAGE", the form compilers use, or "PREFIX: MESSAGE" with no position.
Status ParseError(const std::string& prefix, const std::string& error) {
  const bool positioned = !error.empty() && std::isdigit(static_cast<unsigned char>(error[0]));
  return InvalidArgumentError(prefix + (positioned ? ":" : ": ") + error);
}

}  // namespace

StatusOr<backflow::v1::Graph> ParseGraphText(std::string_view text) {
  backflow::v1::Graph graph;
  std::string error;
  if (!ParseText(std::string(text), &graph, &error)) {
    return ParseError("graph text", error);
  }
  return graph;
}

StatusOr<backflow::v1::Graph> LoadGraphText(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFoundError("graph file '" + path + "' does not exist");
  }
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError("graph file '" + path + "' is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.is_open() || in.bad()) {
    return FailedPreconditionError("cannot read graph file '" + path + "'");
  }
  backflow::v1::Graph graph;
  std::string error;
  if (!ParseText(text, &graph, &error)) return ParseError(path, error);
  return graph;
}

}  // namespace backflow
