// float32 kernels for unary gates on oneDNN's eltwise primitives (JIT-vectorised relu, tanh, ...).
//
// They exist for two reasons: speed (libm's scalar tanh is ~50x slower than oneDNN's), and
// layouts: an activation between two oneDNN gates (conv -> relu -> pool) would otherwise force
// each side to reorder to plain and back. The eltwise primitive runs on whatever layout its input
// has, so these kernels accept blocked inputs and keep that layout for their output where the
// plan allows (Note [Layouts between oneDNN gates] in engine/exec/plan.h). Only ops with f(0) = 0
// take blocked inputs, so the zero padding of blocked channels stays zero.
#ifndef BACKFLOW_ENGINE_GATES_ELTWISE_DNNL_H_
#define BACKFLOW_ENGINE_GATES_ELTWISE_DNNL_H_

#include <oneapi/dnnl/dnnl.hpp>

#include <memory>

#include "engine/core/status.h"
#include "engine/ir/gate.h"

namespace backflow {

struct EltwiseSpec {
  dnnl::algorithm forward;  // eltwise_relu, eltwise_tanh, ...
  dnnl::algorithm backward;  // the same, or its *_use_dst_for_bwd variant
  bool backward_reads_dst;  // backward takes y (true) or x (false)
  float alpha = 0.f;  // relu: the negative slope
};

// Below this many elements (and with a plain input) the plain loop is faster than a primitive.
inline constexpr int64_t kEltwiseMinElements = 4096;

// True if a float32 unary node with these inputs should run on oneDNN.
bool UseDnnlEltwise(const CompileContext& ctx);

// y = f(x). Input 0: x.
StatusOr<std::unique_ptr<Kernel>> CompileDnnlEltwise(const CompileContext& ctx,
                                                     const EltwiseSpec& spec);
// dx = dy * f'(x or y). Inputs: x, y, dy (the "<op>_grad" gates' order).
StatusOr<std::unique_ptr<Kernel>> CompileDnnlEltwiseGrad(const CompileContext& ctx,
                                                         const EltwiseSpec& spec);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_ELTWISE_DNNL_H_
