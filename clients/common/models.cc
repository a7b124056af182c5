#include "clients/common/models.h"

#include "clients/common/rpc.h"
#include "clients/common/tensors.h"

namespace backflow::clients {

grpc::Status GetModel(v1::Backflow::Stub& stub, const std::string& model_id,
                      std::chrono::duration<double> timeout, v1::ModelInfo* info, bool history) {
  v1::GetModelRequest request;
  request.set_model_id(model_id);
  request.set_history(history);
  grpc::ClientContext context;
  SetTimeout(context, timeout);
  return stub.GetModel(&context, request, info);
}

DType ModelDType(const v1::ModelInfo& info) { return EngineDType(info.dtype()); }

}  // namespace backflow::clients
