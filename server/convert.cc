#include "server/convert.h"

#include "engine/ir/tensor_proto.h"
#include "server/names.h"

namespace backflow::server {

StatusOr<TensorMap> DecodeTensors(const WireTensorMap& wire, std::string_view what,
                                  int64_t max_elements, std::optional<DType> dtype) {
  TensorMap out;
  out.reserve(wire.size());
  for (const auto& [name, proto] : wire) {
    BF_RETURN_IF_ERROR(CheckLength(what, name, kMaxNameBytes));
    const std::string where = std::string(what) + " " + Quoted(name);
    BF_ASSIGN_OR_RETURN(Tensor tensor, TensorFromProto(proto, where, max_elements));
    if (dtype && tensor.dtype() != *dtype) {
      return InvalidArgumentError(where + ": dtype " + std::string(DTypeName(tensor.dtype())) +
                                  ", the model computes in " + std::string(DTypeName(*dtype)));
    }
    BF_RETURN_IF_ERROR(CheckAllFinite(tensor, where));
    out.emplace(name, std::move(tensor));
  }
  return out;
}

FeedMap Feeds(const TensorMap& tensors) {
  FeedMap feeds;
  feeds.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) feeds.emplace(name, &tensor);
  return feeds;
}

void EncodeTensors(const std::unordered_map<std::string, Tensor>& tensors, WireTensorMap* wire) {
  for (const auto& [name, tensor] : tensors) TensorToProto(tensor, &(*wire)[name]);
}

void EncodeMetrics(const std::unordered_map<std::string, double>& metrics,
                   google::protobuf::Map<std::string, double>* wire) {
  for (const auto& [name, value] : metrics) (*wire)[name] = value;
}

StatusOr<DType> DecodeDType(int wire_dtype, std::string_view what) {
  BF_ASSIGN_OR_RETURN(const DType dtype, DTypeFromProto(wire_dtype, what));
  if (IsInteger(dtype)) {
    return InvalidArgumentError(std::string(what) + ": " + std::string(DTypeName(dtype)) +
                                " is not a compute dtype (models compute in FLOAT32 or FLOAT64)");
  }
  return dtype;
}

v1::DataType EncodeDType(DType dtype) { return DTypeToProto(dtype); }

StatusOr<OptimizerConfig> DecodeOptimizer(const v1::OptimizerSpec& spec) {
  OptimizerConfig config;
  switch (spec.kind()) {
    case v1::OptimizerSpec::KIND_UNSPECIFIED:
    case v1::OptimizerSpec::SGD: config.kind = OptimizerConfig::Kind::kSgd; break;
    case v1::OptimizerSpec::ADAM: config.kind = OptimizerConfig::Kind::kAdam; break;
    case v1::OptimizerSpec::ADAMW: config.kind = OptimizerConfig::Kind::kAdamW; break;
    default:
      return InvalidArgumentError("optimizer.kind: unknown value " +
                                  std::to_string(static_cast<int>(spec.kind())));
  }
  if (spec.has_learning_rate()) config.learning_rate = spec.learning_rate();
  config.momentum = spec.momentum();
  config.nesterov = spec.nesterov();
  config.weight_decay = spec.weight_decay();
  if (spec.has_beta1()) config.beta1 = spec.beta1();
  if (spec.has_beta2()) config.beta2 = spec.beta2();
  if (spec.has_epsilon()) config.epsilon = spec.epsilon();
  config.clip_norm = spec.clip_norm();
  if (spec.has_clip_epsilon()) config.clip_epsilon = spec.clip_epsilon();
  Status valid = ValidateOptimizerConfig(config);
  if (!valid.ok()) return valid.WithPrefix("optimizer");
  return config;
}

}  // namespace backflow::server
