// The translator's bookkeeping: entries, placing values in the graph, emitting nodes.
#include "engine/onnx/onnx_translator.h"

#include <string>

#include "engine/core/saturating.h"
#include "engine/gates/builtin.h"
#include "engine/ir/import_internal.h"  // ConvertAttributes
#include "engine/ir/tensor_proto.h"

namespace backflow::onnx_import {
namespace {

Shape AtBatch(const std::vector<int64_t>& dims, int64_t batch) {
  return Shape(dims).WithBatch(batch);
}

}  // namespace

Translator::Translator(const OnnxImportOptions& options, int64_t opset)
    : options_(options), opset_(opset), at_a_(BuiltinGates()), at_b_(BuiltinGates()),
      frozen_(options.frozen.begin(), options.frozen.end()) {}

Status Translator::CountUses(const onnx::GraphProto& graph) {
  for (const onnx::NodeProto& node : graph.node()) {
    for (const std::string& name : node.input()) {
      if (!name.empty()) ++uses_[name];
    }
  }
  for (const onnx::ValueInfoProto& output : graph.output()) ++uses_[output.name()];
  return Status::Ok();
}

int Translator::uses(const std::string& onnx_name) const {
  auto it = uses_.find(onnx_name);
  return it == uses_.end() ? 0 : it->second;
}

Entry* Translator::Find(const std::string& onnx_name) {
  auto it = entries_.find(onnx_name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::string Translator::Unique(std::string_view base) const { return at_a_.UniqueName(base); }

std::string Translator::NameFor(const std::string& onnx_name) const {
  return Unique(onnx_name.empty() ? std::string_view("value") : std::string_view(onnx_name));
}

Status Translator::AddInitializer(const onnx::TensorProto& tensor) {
  const std::string what = "initializer '" + tensor.name() + "'";
  if (tensor.name().empty()) return InvalidArgumentError("an initializer has no name");
  if (entries_.count(tensor.name())) return InvalidArgumentError(what + " is defined twice");
  BF_RETURN_IF_ERROR(CheckInline(tensor, what));
  Entry entry;
  if (IsFloatType(tensor.data_type())) {
    entry.initializer = &tensor;
  } else {
    BF_ASSIGN_OR_RETURN(Known known,
                        KnownFromTensor(tensor, what, options_.limits.max_tensor_elements));
    entry.known = std::move(known);
  }
  entries_[tensor.name()] = std::move(entry);
  return Status::Ok();
}

Status Translator::AddInput(const onnx::ValueInfoProto& input) {
  const std::string what = "graph input '" + input.name() + "'";
  if (entries_.count(input.name())) return Status::Ok();  // an initializer (IR version < 4)
  if (!input.type().has_tensor_type()) return InvalidArgumentError(what + " is not a tensor");
  const onnx::TypeProto::Tensor& type = input.type().tensor_type();
  backflow::v1::Placeholder* p = proto_.add_placeholders();
  p->set_name(input.name());
  DType dtype = DType::kFloat32;
  if (type.elem_type() == onnx::TensorProto::INT64) {
    dtype = DType::kInt64;
  } else if (type.elem_type() == onnx::TensorProto::INT32) {
    dtype = DType::kInt32;
  } else if (!IsFloatType(type.elem_type())) {
    return InvalidArgumentError(what + ": element type " +
                                onnx::TensorProto::DataType_Name(
                                    static_cast<onnx::TensorProto::DataType>(type.elem_type())) +
                                " is not supported (float, double, int64 and int32 are)");
  }
  if (dtype != DType::kFloat32) p->set_dtype(DTypeToProto(dtype));
  if (!type.has_shape()) {
    return InvalidArgumentError(what + " has no shape: backflow needs every dimension but the "
                                "batch (dimension 0) to be static");
  }
  std::vector<int64_t> dims;
  for (int i = 0; i < type.shape().dim_size(); ++i) {
    const onnx::TensorShapeProto::Dimension& d = type.shape().dim(i);
    if (i == 0 && !d.has_dim_value()) {
      dims.push_back(kBatchDim);
    } else if (!d.has_dim_value() || d.dim_value() <= 0) {
      const std::string got = d.has_dim_param() ? "'" + d.dim_param() + "'"
                              : d.has_dim_value() ? std::to_string(d.dim_value())
                                                  : "unknown";
      return InvalidArgumentError(what + ": dimension " + std::to_string(i) + " is " + got +
                                  ": only dimension 0 (the batch) may be symbolic; the others "
                                  "must be static sizes > 0");
    } else {
      dims.push_back(d.dim_value());
    }
  }
  for (int64_t d : dims) p->add_shape(d);
  BF_RETURN_IF_ERROR(CheckedElementCount(dims, options_.limits.max_tensor_elements, what).status());
  BF_RETURN_IF_ERROR(at_a_.AddPlaceholder(input.name(), AtBatch(dims, kBatchA), dtype).status());
  BF_RETURN_IF_ERROR(at_b_.AddPlaceholder(input.name(), AtBatch(dims, kBatchB), dtype).status());
  entries_[input.name()] = Entry{.tensor = input.name()};
  return Status::Ok();
}

StatusOr<std::string> Translator::PlaceInitializer(const NodeContext& ctx,
                                                   const std::string& onnx_name,
                                                   const onnx::TensorProto& tensor) {
  const std::string what = "initializer '" + onnx_name + "'";
  BF_ASSIGN_OR_RETURN(backflow::Tensor value,
                      FloatTensor(tensor, what, options_.limits.max_tensor_elements));
  const std::string name = NameFor(onnx_name);
  if (frozen_.count(onnx_name)) {
    backflow::v1::Constant* c = proto_.add_constants();
    c->set_name(name);
    TensorToProto(value, c->mutable_value());
    BF_RETURN_IF_ERROR(at_a_.AddConstant(name, value).status());
    BF_RETURN_IF_ERROR(at_b_.AddConstant(name, value).status());
    return name;
  }
  const bool state = state_names_.count(onnx_name) > 0;
  backflow::v1::Parameter* p = state ? proto_.add_states() : proto_.add_parameters();
  p->set_name(name);
  for (int64_t d : value.shape().dims()) p->add_shape(d);
  if (state) {
    BF_RETURN_IF_ERROR(at_a_.AddState(name, value.shape()).status());
    BF_RETURN_IF_ERROR(at_b_.AddState(name, value.shape()).status());
  } else {
    BF_RETURN_IF_ERROR(at_a_.AddParameter(name, value.shape()).status());
    BF_RETURN_IF_ERROR(at_b_.AddParameter(name, value.shape()).status());
  }
  values_.emplace(name, std::move(value));
  return name;
}

StatusOr<std::string> Translator::PlaceKnown(const NodeContext& ctx, const Known& known) {
  if (known.batch_dependent()) {
    return ctx.Error("a value computed from the batch size is used as data; backflow folds "
                     "such values only into shapes (Reshape, Slice, Expand targets)");
  }
  std::vector<double> values;
  if (known.is_float) {
    values = known.f;
  } else {
    values.assign(known.a.begin(), known.a.end());
  }
  backflow::Tensor tensor =
      backflow::Tensor::FromValues(DType::kFloat64, Shape(known.shape), values);
  const std::string name = Unique(ctx.label() + "/constant");
  backflow::v1::Constant* c = proto_.add_constants();
  c->set_name(name);
  TensorToProto(tensor, c->mutable_value());
  BF_RETURN_IF_ERROR(at_a_.AddConstant(name, tensor).status());
  BF_RETURN_IF_ERROR(at_b_.AddConstant(name, tensor).status());
  return name;
}

StatusOr<std::string> Translator::Place(const NodeContext& ctx, const std::string& onnx_name,
                                        Entry& entry) {
  if (!entry.tensor.empty()) return entry.tensor;
  if (entry.initializer != nullptr) {
    BF_ASSIGN_OR_RETURN(entry.tensor, PlaceInitializer(ctx, onnx_name, *entry.initializer));
  } else if (entry.known) {
    BF_ASSIGN_OR_RETURN(entry.tensor, PlaceKnown(ctx, *entry.known));
  } else if (entry.pending_pad) {
    // A zero Pad that no consumer could absorb: a pad node after all.
    const auto& [source, spatial] = *entry.pending_pad;
    AttrMap attrs;
    attrs["pads"] = IntsAttr({0, 0, spatial[0], spatial[1], 0, 0, spatial[2], spatial[3]});
    BF_ASSIGN_OR_RETURN(entry.tensor, AddNode(NameFor(onnx_name), "pad", {source}, attrs));
  } else {
    return ctx.Error("input '" + onnx_name + "' has no value");
  }
  return entry.tensor;
}

StatusOr<std::pair<Shape, Shape>> Translator::Shapes(const std::string& tensor) const {
  std::optional<ValueId> a = at_a_.Find(tensor);
  std::optional<ValueId> b = at_b_.Find(tensor);
  if (!a || !b) return InternalError("ONNX import: no tensor '" + tensor + "'");
  return std::make_pair(at_a_.value(*a).shape, at_b_.value(*b).shape);
}

StatusOr<std::string> Translator::AddNode(std::string name, std::string_view op,
                                          std::vector<std::string> inputs, AttrMap attrs) {
  if (proto_.nodes_size() >= options_.limits.max_nodes) {
    return ResourceExhaustedError("the translated graph has more than " +
                                  std::to_string(options_.limits.max_nodes) + " nodes");
  }
  backflow::v1::Node node;
  node.set_name(name);
  node.set_op(std::string(op));
  for (const std::string& input : inputs) node.add_inputs(input);
  *node.mutable_attrs() = std::move(attrs);
  BF_ASSIGN_OR_RETURN(Attributes converted,
                      import_internal::ConvertAttributes(node, "node '" + name + "'",
                                                         options_.limits.max_name_length));
  for (Graph* graph : {&at_a_, &at_b_}) {
    std::vector<ValueId> ids;
    for (const std::string& input : inputs) {
      std::optional<ValueId> id = graph->Find(input);
      if (!id) return InternalError("ONNX import: node '" + name + "' reads unknown '" + input + "'");
      ids.push_back(*id);
    }
    BF_ASSIGN_OR_RETURN(const ValueId out, graph->AddNode(name, op, std::move(ids), converted));
    // Bounded as ImportGraph bounds outputs (at this batch size), so that no later arithmetic on
    // the shape overflows.
    BF_RETURN_IF_ERROR(
        CheckedElementCount(graph->value(out).shape.dims(),
                            SaturatingMul(options_.limits.max_tensor_elements, kBatchB),
                            "node '" + name + "': output")
            .status());
  }
  *proto_.add_nodes() = std::move(node);
  return name;
}

Status Translator::AddOutput(const onnx::ValueInfoProto& output) {
  Entry* entry = Find(output.name());
  if (entry == nullptr) {
    return InvalidArgumentError("graph output '" + output.name() + "' is not computed by any node");
  }
  if (entry->known && entry->tensor.empty()) {
    return InvalidArgumentError("graph output '" + output.name() +
                                "' is a constant; backflow models compute their outputs");
  }
  onnx::NodeProto none;
  none.add_output(output.name());
  NodeContext ctx(*this, none);
  BF_ASSIGN_OR_RETURN(std::string tensor, Place(ctx, output.name(), *entry));
  proto_.add_outputs(tensor);
  output_names_[output.name()] = tensor;
  return Status::Ok();
}

OnnxImported Translator::Finish(std::string producer) {
  OnnxImported out;
  out.graph = std::move(proto_);
  out.values = std::move(values_);
  out.opset = opset_;
  out.producer = std::move(producer);
  return out;
}

}  // namespace backflow::onnx_import
