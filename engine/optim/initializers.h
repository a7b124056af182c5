// Initializers: the first values of a model's parameters, drawn as each parameter's
// InitializerSpec (engine/ir/graph.h, imported from backflow.v1.Initializer) says.
//
// Reproducible by construction: a parameter's values depend only on (seed, its name, its
// shape, its spec), never on the other parameters or the order they are drawn in, so adding a
// layer to a model does not change the others' starting point. The generator is std::mt19937_64
// (its output is fixed by the standard) seeded from a hash of (seed, name), and the
// distributions are written out here rather than taken from <random>, whose distributions are
// implementation-defined. Normals use Box-Muller, which calls std::log/cos/sin: results agree
// bit for bit wherever the C library's versions of those agree (glibc does, across x86-64 and
// aarch64), and to within a rounding error elsewhere.
//
// Fan-in and fan-out, which scale glorot and he, follow graph.proto: [in, out] for 2-D shapes,
// [out, in, kh, kw] for 4-D convolution weights, and the element count for other ranks.
#ifndef BACKFLOW_ENGINE_OPTIM_INITIALIZERS_H_
#define BACKFLOW_ENGINE_OPTIM_INITIALIZERS_H_

#include <cstdint>
#include <string>
#include <unordered_map>

#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/graph.h"

namespace backflow {

struct Fans {
  double in = 1;
  double out = 1;
};
Fans ComputeFans(const Shape& shape);

// The initial value of `param` (a kParameter value with a fully defined shape) as a `dtype`
// tensor. InvalidArgument naming the parameter if it is not a parameter, its shape is not fully
// defined, or its spec is inconsistent (an explicit value of the wrong shape).
// Glorot: uniform on +-gain*sqrt(6/(fan_in+fan_out)) or normal with stddev
// gain*sqrt(2/(fan_in+fan_out)). He: uniform on +-sqrt(6/fan_in) or normal with stddev
// sqrt(2/fan_in).
StatusOr<Tensor> InitializeParameter(const Value& param, DType dtype, uint64_t seed);

// Initial values of all parameters (or, with kind kState, all running state) of `graph`, by name.
StatusOr<std::unordered_map<std::string, Tensor>> InitializeParameters(
    const Graph& graph, DType dtype, uint64_t seed, ValueKind kind = ValueKind::kParameter);

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_OPTIM_INITIALIZERS_H_
