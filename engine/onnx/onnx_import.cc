#include "engine/onnx/onnx_import.h"

#include <algorithm>
#include <limits>
#include <string>

#include "engine/onnx/onnx_translator.h"

namespace backflow {
namespace {

using onnx_import::AttrMap;
using onnx_import::Translator;

// The default domain's opset ("" and "ai.onnx" are the same domain).
StatusOr<int64_t> DefaultOpset(const onnx::ModelProto& model) {
  int64_t opset = -1;
  for (const onnx::OperatorSetIdProto& id : model.opset_import()) {
    if (id.domain().empty() || id.domain() == "ai.onnx") opset = id.version();
  }
  if (opset < 0) {
    return InvalidArgumentError("the ONNX model imports no opset of the default domain");
  }
  if (opset < kMinOnnxOpset || opset > kMaxOnnxOpset) {
    return InvalidArgumentError("the ONNX model uses opset " + std::to_string(opset) +
                                "; backflow imports opsets " + std::to_string(kMinOnnxOpset) +
                                " to " + std::to_string(kMaxOnnxOpset) +
                                " (torch.onnx.export's opset_version)");
  }
  return opset;
}

// A target shaped like `shape` (the output of the loss's input at the two batch sizes): the
// batch-dependent dimension 0 becomes the open batch.
StatusOr<std::vector<int64_t>> TargetShape(const Shape& a, const Shape& b,
                                           const std::string& output) {
  std::vector<int64_t> dims;
  for (int i = 0; i < a.rank(); ++i) {
    if (a.dim(i) == b.dim(i)) {
      dims.push_back(a.dim(i));
    } else if (i == 0 && a.dim(i) == onnx_import::kBatchA) {
      dims.push_back(kBatchDim);
    } else {
      return InvalidArgumentError("loss: output '" + output + "' has a batch-dependent dimension " +
                                  std::to_string(i) + "; targets must be [N, ...]");
    }
  }
  return dims;
}

}  // namespace

namespace onnx_import {

Status Translator::AttachLoss(const OnnxLossSpec& loss) {
  static const std::vector<std::string> kKinds = {"sigmoid_cross_entropy", "softmax_cross_entropy",
                                                  "squared_error"};
  if (std::find(kKinds.begin(), kKinds.end(), loss.kind) == kKinds.end()) {
    return InvalidArgumentError("loss: kind '" + loss.kind.substr(0, 100) +
                                "' is not one of softmax_cross_entropy, squared_error, "
                                "sigmoid_cross_entropy");
  }
  std::string output = loss.output;
  if (output.empty()) {
    if (output_names_.size() != 1) {
      return InvalidArgumentError("loss: the model has " + std::to_string(output_names_.size()) +
                                  " outputs; name the one the loss reads");
    }
    output = output_names_.begin()->first;
  }
  auto it = output_names_.find(output);
  if (it == output_names_.end()) {
    return InvalidArgumentError("loss: '" + output.substr(0, 200) + "' is not an output of the graph");
  }
  const std::string labels = loss.labels.empty() ? "labels" : loss.labels;
  if (at_a_.Find(labels)) {
    return InvalidArgumentError("loss: the labels input '" + labels +
                                "' is a name the graph uses already; choose another");
  }
  BF_ASSIGN_OR_RETURN(auto shapes, Shapes(it->second));
  const Shape& a = shapes.first;
  backflow::v1::Placeholder* p = proto_.add_placeholders();
  p->set_name(labels);
  std::vector<int64_t> dims;
  DType dtype = DType::kFloat32;
  if (loss.kind == "softmax_cross_entropy") {
    if (a.rank() != 2) {
      return InvalidArgumentError("loss: softmax_cross_entropy reads [N, classes] logits, but '" +
                                  output + "' has shape " + a.ToString() + " at batch " +
                                  std::to_string(kBatchA));
    }
    BF_ASSIGN_OR_RETURN(std::vector<int64_t> full, TargetShape(a, shapes.second, output));
    dims = {full[0]};
    dtype = DType::kInt64;
    p->set_dtype(backflow::v1::INT64);
  } else {
    BF_ASSIGN_OR_RETURN(dims, TargetShape(a, shapes.second, output));
  }
  for (int64_t d : dims) p->add_shape(d);
  BF_RETURN_IF_ERROR(at_a_.AddPlaceholder(labels, Shape(dims).WithBatch(kBatchA), dtype).status());
  BF_RETURN_IF_ERROR(at_b_.AddPlaceholder(labels, Shape(dims).WithBatch(kBatchB), dtype).status());
  AttrMap attrs;
  if (loss.kind == "squared_error") attrs["reduction"].set_s("mean");
  BF_ASSIGN_OR_RETURN(std::string name, AddNode(Unique("loss"), loss.kind, {it->second, labels}, attrs));
  proto_.set_loss(name);
  if (loss.kind == "softmax_cross_entropy") {
    BF_ASSIGN_OR_RETURN(std::string acc, AddNode(Unique("accuracy"), "accuracy", {it->second, labels}, {}));
    proto_.add_outputs(acc);
  }
  return Status::Ok();
}

}  // namespace onnx_import

const std::vector<std::string>& SupportedOnnxOps() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> names;
    for (const auto& [name, fn] : onnx_import::OpTable()) names.push_back(name);
    return names;
  }();
  return ops;
}

StatusOr<OnnxImported> ImportOnnx(std::string_view model_bytes, const OnnxImportOptions& options) {
  if (model_bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return ResourceExhaustedError("the ONNX model is larger than 2 GiB");
  }
  onnx::ModelProto model;
  if (model_bytes.empty() ||
      !model.ParseFromArray(model_bytes.data(), static_cast<int>(model_bytes.size()))) {
    return InvalidArgumentError("the bytes are not an ONNX model (they do not parse as "
                                "onnx.ModelProto)");
  }
  if (!model.has_graph()) return InvalidArgumentError("the ONNX model has no graph");
  BF_ASSIGN_OR_RETURN(int64_t opset, DefaultOpset(model));
  const onnx::GraphProto& graph = model.graph();
  if (graph.node_size() > 4 * options.limits.max_nodes) {
    return ResourceExhaustedError("the ONNX graph has " + std::to_string(graph.node_size()) +
                                  " nodes; the limit is " +
                                  std::to_string(4 * options.limits.max_nodes));
  }
  if (graph.output_size() == 0) return InvalidArgumentError("the ONNX graph has no outputs");
  Translator t(options, opset);
  BF_RETURN_IF_ERROR(t.CountUses(graph));
  for (const onnx::TensorProto& init : graph.initializer()) BF_RETURN_IF_ERROR(t.AddInitializer(init));
  for (const onnx::ValueInfoProto& input : graph.input()) BF_RETURN_IF_ERROR(t.AddInput(input));
  for (const onnx::NodeProto& node : graph.node()) BF_RETURN_IF_ERROR(t.Translate(node));
  for (const onnx::ValueInfoProto& output : graph.output()) BF_RETURN_IF_ERROR(t.AddOutput(output));
  if (options.loss) BF_RETURN_IF_ERROR(t.AttachLoss(*options.loss));
  std::string producer = model.producer_name();
  if (!model.producer_version().empty()) producer += " " + model.producer_version();
  OnnxImported imported = t.Finish(producer);
  imported.graph.set_name(!options.name.empty() ? options.name
                          : !graph.name().empty() ? graph.name() : "onnx");
  for (const std::string& name : options.frozen) {
    bool found = false;
    for (const auto& c : imported.graph.constants()) found = found || c.name() == name;
    if (!found) {
      return InvalidArgumentError("frozen: '" + name.substr(0, 200) +
                                  "' is not a float initializer that the graph computes with");
    }
  }
  return imported;
}

}  // namespace backflow
