// Fuzz target: tensor decoding. The input is a serialized backflow.v1.Tensor, as every request
// carries them (batches, inputs, initial and new parameter values, Evaluate's values). It goes
// through the server's decoding (DecodeTensors: size limit, byte length, dtype, finiteness) for
// each dtype a model may ask for, and a tensor that decodes must encode back to the same wire
// form (dtype DATA_TYPE_UNSPECIFIED reads as FLOAT32) and decode again to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "backflow/v1/service.pb.h"
#include "engine/ir/tensor_proto.h"
#include "fuzz/fuzz_limits.h"
#include "server/convert.h"

namespace {

using backflow::DType;

// The round trip of a decoded tensor; aborts (a finding) if it is not the identity.
void CheckRoundTrip(const backflow::v1::Tensor& proto, const backflow::Tensor& tensor) {
  backflow::v1::Tensor encoded;
  backflow::TensorToProto(tensor, &encoded);
  const int expected_dtype = proto.dtype() == backflow::v1::DATA_TYPE_UNSPECIFIED
                                 ? static_cast<int>(backflow::v1::FLOAT32)
                                 : static_cast<int>(proto.dtype());
  bool same = encoded.dtype() == expected_dtype && encoded.data() == proto.data() &&
              encoded.shape_size() == proto.shape_size();
  for (int i = 0; same && i < proto.shape_size(); ++i) same = encoded.shape(i) == proto.shape(i);
  if (!same) std::abort();
  backflow::StatusOr<backflow::Tensor> again =
      backflow::TensorFromProto(encoded, "again", backflow::fuzz::kMaxTensorElements);
  if (!again.ok() || !backflow::BitwiseEqual(*again, tensor)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  backflow::v1::Tensor proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  backflow::StatusOr<backflow::Tensor> tensor =
      backflow::TensorFromProto(proto, "tensor", backflow::fuzz::kMaxTensorElements);
  if (tensor.ok()) {
    CheckRoundTrip(proto, *tensor);
    (void)backflow::CheckAllFinite(*tensor, "tensor");
  }
  // As a request's map of named tensors, decoded for each dtype a model may require.
  backflow::v1::InferRequest request;
  (*request.mutable_inputs())["x"] = proto;
  for (const std::optional<DType> dtype :
       {std::optional<DType>(), std::optional(DType::kFloat32), std::optional(DType::kFloat64)}) {
    (void)backflow::server::DecodeTensors(request.inputs(), "batch",
                                          backflow::fuzz::kMaxTensorElements, dtype);
  }
  return 0;
}
