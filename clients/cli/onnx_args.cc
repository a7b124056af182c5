#include "clients/cli/onnx_args.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

namespace backflow::cli {
namespace {

constexpr std::string_view kLossKinds[] = {"softmax_cross_entropy", "squared_error",
                                           "sigmoid_cross_entropy"};

std::string LossKindList() {
  return std::string(kLossKinds[0]) + ", " + std::string(kLossKinds[1]) + " or " +
         std::string(kLossKinds[2]);
}

}  // namespace

std::vector<clients::FlagSpec> OnnxFlags() {
  using clients::FlagKind;
  return {
      {"onnx", FlagKind::kValue, "FILE", "an ONNX model (a .onnx file) instead of a graph"},
      {"loss", FlagKind::kValue, "KIND",
       "with --onnx: the loss to attach (none: inference only):\n" + LossKindList()},
      {"output", FlagKind::kValue, "NAME",
       "with --onnx: the ONNX output the loss reads (default: the only one)"},
      {"labels", FlagKind::kValue, "NAME",
       "with --onnx: the new input carrying labels or targets (default labels)"},
      {"frozen", FlagKind::kList, "A,B",
       "with --onnx: initializers kept fixed (comma-separated; may be repeated)"},
  };
}

Status CheckOnnxFlags(const clients::Args& args, bool loss_required) {
  if (!args.Has("onnx")) {
    for (std::string_view flag : {"loss", "output", "labels", "frozen"}) {
      if (args.Has(flag))
        return InvalidArgumentError("--" + std::string(flag) + " needs --onnx FILE");
    }
    return Status::Ok();
  }
  if (args.Value("onnx").empty()) return InvalidArgumentError("--onnx: empty file name");
  if (!args.Has("loss")) {
    if (!loss_required) return Status::Ok();
    return InvalidArgumentError("--onnx needs --loss KIND to train (" + LossKindList() + ")");
  }
  const std::string kind = args.Value("loss");
  for (std::string_view known : kLossKinds) {
    if (kind == known) return Status::Ok();
  }
  return InvalidArgumentError("--loss: '" + kind + "' is not " + LossKindList());
}

v1::OnnxModel OnnxOptionsFromArgs(const clients::Args& args) {
  v1::OnnxModel onnx;
  if (args.Has("loss")) {
    v1::OnnxLoss* loss = onnx.mutable_loss();
    loss->set_kind(args.Value("loss"));
    loss->set_output(args.Value("output"));
    loss->set_labels(args.Value("labels"));
  }
  for (const std::string& list : args.Values("frozen")) {
    std::istringstream names(list);
    for (std::string name; std::getline(names, name, ',');) {
      if (!name.empty()) onnx.add_frozen(name);
    }
  }
  return onnx;
}

StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot read (" + std::strerror(errno) + ")");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return InternalError(path + ": read failed");
  return bytes;
}

Status WriteFileBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InternalError(path + ": cannot write (" + std::strerror(errno) + ")");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return InternalError(path + ": write failed");
  return Status::Ok();
}

}  // namespace backflow::cli
