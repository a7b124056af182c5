#include "engine/optim/initializers.h"

#include <cmath>
#include <numbers>
#include <random>
#include <string_view>

namespace backflow {
namespace {

using Kind = InitializerSpec::Kind;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// One generator per parameter, so parameters are independent of each other and of draw order.
// SplitMix64 spreads nearby seeds (0, 1, 2, ...) across the whole state space.
class Sampler {
 public:
  Sampler(uint64_t seed, std::string_view name)
      : gen_(SplitMix64(SplitMix64(seed) ^ Fnv1a64(name))) {}

  // Uniform on [0, 1): the top 53 bits fill a double's mantissa exactly.
  double Uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }

  // Standard normal by Box-Muller; each pair of uniforms gives two normals.
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - Uniform();  // (0, 1]: log stays finite
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  std::mt19937_64 gen_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// Writes next() into every element in row-major order, straight into the tensor: parameters
// may be large, and a temporary array of doubles would double the memory they need.
template <typename Next>
void FillWith(Tensor& tensor, Next next) {
  const int64_t n = tensor.num_elements();
  if (tensor.dtype() == DType::kFloat64) {
    for (int64_t i = 0; i < n; ++i) tensor.data<double>()[i] = next();
  } else {
    for (int64_t i = 0; i < n; ++i) tensor.data<float>()[i] = static_cast<float>(next());
  }
}

void Draw(const InitializerSpec& spec, Sampler& sampler, Tensor& tensor) {
  const Fans fans = ComputeFans(tensor.shape());
  double low = spec.a, high = spec.b, mean = spec.a, stddev = spec.b;
  bool normal = spec.kind == Kind::kNormal;
  if (spec.kind == Kind::kGlorot || spec.kind == Kind::kHe) {
    const double variance =
        spec.kind == Kind::kGlorot ? spec.a * spec.a * 2.0 / (fans.in + fans.out) : 2.0 / fans.in;
    // A uniform on [-l, l] has variance l^2 / 3, so l = sqrt(3 * variance).
    high = std::sqrt(3.0 * variance);
    low = -high;
    mean = 0;
    stddev = std::sqrt(variance);
    normal = spec.normal;
  }
  if (normal) {
    FillWith(tensor, [&] { return mean + stddev * sampler.Normal(); });
  } else {
    FillWith(tensor, [&] { return low + (high - low) * sampler.Uniform(); });
  }
}

// A constant of 1e300 (or a uniform's bound, a normal's deviation, a given value) past the
// dtype's range would start the model at infinity: refused, as any later step would be.
StatusOr<Tensor> CheckFinite(Tensor tensor, const std::string& where) {
  const int64_t bad = FirstNonFinite(tensor);
  if (bad < 0) return tensor;
  return InvalidArgumentError(where + ": initial value at element " + std::to_string(bad) +
                              " is not finite in " + std::string(DTypeName(tensor.dtype())) +
                              " (it overflows the dtype, or is a NaN or infinity)");
}

}  // namespace

Fans ComputeFans(const Shape& shape) {
  const double n = static_cast<double>(shape.num_elements());
  if (shape.rank() == 2) {
    return {static_cast<double>(shape.dim(0)), static_cast<double>(shape.dim(1))};
  }
  if (shape.rank() == 4) {
    const double receptive = static_cast<double>(shape.dim(2) * shape.dim(3));
    return {static_cast<double>(shape.dim(1)) * receptive,
            static_cast<double>(shape.dim(0)) * receptive};
  }
  return {n, n};
}

StatusOr<Tensor> InitializeParameter(const Value& param, DType dtype, uint64_t seed) {
  const std::string where = std::string(ValueKindName(param.kind)) + " '" + param.name + "'";
  if (param.kind != ValueKind::kParameter && param.kind != ValueKind::kState) {
    return InvalidArgumentError(where + ": not a parameter or state");
  }
  if (!param.shape.fully_defined()) {
    return InvalidArgumentError(where + ": shape " + param.shape.ToString() +
                                " is not fully defined");
  }
  const InitializerSpec& spec = param.init;
  if (spec.kind == Kind::kValue) {
    if (!spec.value || spec.value->shape() != param.shape) {
      return InvalidArgumentError(where + ": initial value does not have shape " +
                                  param.shape.ToString());
    }
    return CheckFinite(spec.value->CastTo(dtype), where);
  }
  Tensor tensor(dtype, param.shape);  // zeros
  if (spec.kind == Kind::kZeros) return tensor;
  if (spec.kind == Kind::kConstant) {
    FillWith(tensor, [&] { return spec.a; });
  } else {
    Sampler sampler(seed, param.name);
    Draw(spec, sampler, tensor);
  }
  return CheckFinite(std::move(tensor), where);
}

StatusOr<std::unordered_map<std::string, Tensor>> InitializeParameters(const Graph& graph,
                                                                       DType dtype, uint64_t seed,
                                                                       ValueKind kind) {
  std::unordered_map<std::string, Tensor> values;
  for (ValueId id : graph.ValuesOfKind(kind)) {
    const Value& param = graph.value(id);
    BF_ASSIGN_OR_RETURN(Tensor tensor, InitializeParameter(param, dtype, seed));
    values.emplace(param.name, std::move(tensor));
  }
  return values;
}

}  // namespace backflow
