#include "engine/gates/builtin.h"

#include "engine/gates/activation.h"
#include "engine/gates/batch_norm.h"
#include "engine/gates/binary.h"
#include "engine/gates/clip.h"
#include "engine/gates/conv.h"
#include "engine/gates/dropout.h"
#include "engine/gates/embedding.h"
#include "engine/gates/gradient_ops.h"
#include "engine/gates/layer_norm.h"
#include "engine/gates/loss.h"
#include "engine/gates/matmul.h"
#include "engine/gates/pad.h"
#include "engine/gates/pool.h"
#include "engine/gates/reduce.h"
#include "engine/gates/shape_ops.h"
#include "engine/gates/slice.h"
#include "engine/gates/softmax.h"
#include "engine/gates/tensor_ops.h"
#include "engine/gates/unary.h"

namespace backflow {

void RegisterBuiltinGates(GateRegistry& registry) {
  RegisterBinaryGates(registry);
  RegisterConvGates(registry);
  RegisterEmbeddingGates(registry);
  RegisterPoolGates(registry);
  RegisterUnaryGates(registry);
  RegisterActivationGates(registry);
  RegisterClipGates(registry);
  RegisterSoftmaxGates(registry);
  RegisterReduceGates(registry);
  RegisterShapeGates(registry);
  RegisterGradientGates(registry);
  RegisterLossGates(registry);
  RegisterMatMulGates(registry);
  RegisterTensorGates(registry);
  RegisterSliceGates(registry);
  RegisterPadGates(registry);
  RegisterDropoutGates(registry);
  RegisterBatchNormGates(registry);
  RegisterLayerNormGates(registry);
}

const GateRegistry& BuiltinGates() {
  static const GateRegistry* const registry = [] {
    auto* r = new GateRegistry();
    RegisterBuiltinGates(*r);
    return r;
  }();
  return *registry;
}

}  // namespace backflow
