// backflow graph convert: a graph file from one protobuf encoding to another (text, binary or
// JSON), checked on the way, so graphs written by hand in text format can be loaded by clients
// whose protobuf library reads only binary or JSON (protobufjs, most Go and Java code). No server
// needed. docs/clients.md shows it in use.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <string>

#include "clients/cli/onnx_args.h"
#include "clients/cli/session.h"
#include "engine/api/import.h"

namespace backflow::cli {
namespace {

enum class Encoding { kText, kBinary, kJson };

StatusOr<Encoding> ParseEncoding(std::string_view name) {
  if (name == "text" || name == "pbtxt") return Encoding::kText;
  if (name == "binary" || name == "pb") return Encoding::kBinary;
  if (name == "json") return Encoding::kJson;
  return InvalidArgumentError("unknown encoding '" + std::string(name) +
                              "' (text, binary or json)");
}

// The encoding a file name's extension says: .pb/.bin binary, .json JSON, anything else text.
Encoding EncodingOfPath(std::string_view path) {
  auto ends = [&](std::string_view suffix) { return path.ends_with(suffix); };
  if (ends(".pb") || ends(".bin") || ends(".binpb")) return Encoding::kBinary;
  if (ends(".json")) return Encoding::kJson;
  return Encoding::kText;
}

StatusOr<v1::Graph> ReadGraph(const std::string& path, Encoding encoding) {
  if (encoding == Encoding::kText) return LoadGraphText(path);
  BF_ASSIGN_OR_RETURN(const std::string bytes, ReadFileBytes(path));
  v1::Graph graph;
  if (encoding == Encoding::kBinary) {
    if (!graph.ParseFromString(bytes)) {
      return InvalidArgumentError(path + ": not a binary backflow.v1.Graph");
    }
    return graph;
  }
  const auto parsed = google::protobuf::util::JsonStringToMessage(bytes, &graph);
  if (!parsed.ok()) {
    return InvalidArgumentError(path +
                                ": not a JSON backflow.v1.Graph: " + std::string(parsed.message()));
  }
  return graph;
}

StatusOr<std::string> Encode(const v1::Graph& graph, Encoding encoding) {
  std::string out;
  if (encoding == Encoding::kBinary) {
    if (!graph.SerializeToString(&out)) return InternalError("the graph does not serialize");
  } else if (encoding == Encoding::kText) {
    if (!google::protobuf::TextFormat::PrintToString(graph, &out)) {
      return InternalError("the graph does not print as text");
    }
  } else {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    const auto printed = google::protobuf::util::MessageToJsonString(graph, &out, options);
    if (!printed.ok()) return InternalError(std::string(printed.message()));
  }
  return out;
}

int RunGraphConvert(Session&, const Args& args) {
  const std::string& in = args.operands()[0];
  const std::string& out = args.operands()[1];
  Encoding from = EncodingOfPath(in);
  Encoding to = EncodingOfPath(out);
  for (auto [flag, encoding] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
    if (!args.Has(flag)) continue;
    StatusOr<Encoding> named = ParseEncoding(args.Value(flag));
    if (!named.ok())
      return UsageError("graph convert",
                        "--" + std::string(flag) + ": " + named.status().message());
    *encoding = *named;
  }
  StatusOr<v1::Graph> graph = ReadGraph(in, from);
  if (!graph.ok()) return Fail("graph convert", graph.status());
  if (!args.Has("no-check")) {
    StatusOr<Graph> imported = ImportGraph(*graph);
    if (!imported.ok()) return Fail("graph convert: " + in, imported.status());
  }
  StatusOr<std::string> bytes = Encode(*graph, to);
  if (!bytes.ok()) return Fail("graph convert", bytes.status());
  if (Status written = WriteFileBytes(out, *bytes); !written.ok()) {
    return Fail("graph convert", written);
  }
  std::fprintf(stderr, "wrote %s (%zu bytes, %d nodes)\n", out.c_str(), bytes->size(),
               graph->nodes_size());
  return kExitOk;
}

}  // namespace

std::vector<Command> GraphCommands() {
  return {{
      .name = "graph convert",
      .operands = "IN OUT",
      .summary = "rewrite a graph file as text, binary or JSON protobuf (no server needed)",
      .details = "The encodings follow the file names (.pb or .bin: binary, .json: JSON, else\n"
                 "text) unless --from or --to says. The graph is checked as the server would\n"
                 "check it first (--no-check skips that).\n"
                 "Example: backflow graph convert models/lenet5.pbtxt lenet5.json\n",
      .flags = {{"from", FlagKind::kValue, "text|binary|json", "IN's encoding"},
                {"to", FlagKind::kValue, "text|binary|json", "OUT's encoding"},
                {"no-check", FlagKind::kSwitch, "", "write the graph without checking it"}},
      .min_operands = 2,
      .max_operands = 2,
      .run = RunGraphConvert,
  }};
}

}  // namespace backflow::cli
