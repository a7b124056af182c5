#include "engine/gates/dropout.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/ir/gate.h"

namespace backflow {
namespace {

uint64_t Mix(uint64_t z) {  // SplitMix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Fnv1a(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

constexpr std::string_view kProbabilityDoc = "the probability of dropping an element, in [0, 1]";

Status CheckProbability(const ShapeContext& ctx) {
  const double p = ctx.attrs.GetFloat("p", 0.5);
  if (!(p >= 0.0 && p <= 1.0)) {
    return ctx.Error("dropout probability p = " + std::to_string(p) + " is not in [0, 1]");
  }
  return Status::Ok();
}

// y = x * mask / (1 - p) in training, x in inference: one kernel for the forward gate (keyed by
// its own node) and for its gradient (keyed by the forward node, so both draw one mask).
template <typename T>
class DropoutKernel : public Kernel {
 public:
  DropoutKernel(double p, std::string mask_node) : p_(p), mask_node_(std::move(mask_node)) {}
  bool overwrites_output() const override { return true; }
  Status Run(KernelContext& ctx) const override {
    const T* x = ctx.inputs[0]->data<T>();
    T* y = ctx.output->data<T>();
    const int64_t n = ctx.output->num_elements();
    if (!ctx.info.training || p_ == 0.0) {
      if (n > 0) std::memcpy(y, x, static_cast<size_t>(n) * sizeof(T));
      return Status::Ok();
    }
    const uint64_t key = DropoutKey(ctx.info, mask_node_);
    const T scale = p_ >= 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p_));
    for (int64_t i = 0; i < n; ++i) y[i] = DropoutKeeps(key, i, p_) ? x[i] * scale : T(0);
    return Status::Ok();
  }

 private:
  double p_;
  std::string mask_node_;
};

class DropoutGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "p", .type = AttrType::kFloat, .default_value = "0.5",
             .description = kProbabilityDoc}};
  }
  OpDoc doc() const override {
    return {.summary = "Inverted dropout in training mode, the identity in inference mode.",
            .inputs = {{"x", "any shape"}},
            .output = "x's shape",
            .forward =
                "training:  y = x * m / (1 - p), m[i] = 1 with probability 1 - p, else 0\n"
                "           (p = 1: y = 0); m is a function of the model's seed, the step and\n"
                "           the node, so a step replays bitwise\n"
                "inference: y = x",
            .gradient = "dL/dx = dy * m / (1 - p) in training, dy in inference"};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(CheckProbability(ctx));
    return ctx.inputs[0];
  }
  // The identity in inference mode.
  Rows BatchRows(const RowsContext& ctx) const override { return ctx.Elementwise(); }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<DropoutKernel>(ctx.dtype, ctx.attrs.GetFloat("p", 0.5),
                                          std::string(ctx.node));
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!ctx.needs_grad(0)) return Status::Ok();
    Attributes attrs;
    attrs.Set("p", ctx.node().attrs.GetFloat("p", 0.5));
    attrs.Set("mask_of", ctx.node().name);
    BF_ASSIGN_OR_RETURN(ValueId dx, ctx.Emit("dropout_grad", {ctx.output_grad()}, attrs));
    ctx.SetGrad(0, dx);
    return Status::Ok();
  }
};

// dropout_grad(dy): dy through the forward node's mask (attribute mask_of names that node).
class DropoutGradGate : public Gate {
 public:
  Arity arity() const override { return {1, 1}; }
  bool internal() const override { return true; }
  std::vector<AttrSpec> attr_specs() const override {
    return {{.name = "p", .type = AttrType::kFloat, .required = true},
            {.name = "mask_of", .type = AttrType::kString, .required = true}};
  }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override {
    BF_RETURN_IF_ERROR(CheckProbability(ctx));
    return ctx.inputs[0];
  }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext& ctx) const override {
    return MakeTypedKernel<DropoutKernel>(ctx.dtype, ctx.attrs.GetFloat("p", 0.5),
                                          ctx.attrs.GetString("mask_of", ""));
  }
  Status Backward(BackwardContext& ctx) const override {  // linear in dy: the same mask again
    if (!ctx.needs_grad(0)) return Status::Ok();
    BF_ASSIGN_OR_RETURN(ValueId d, ctx.Emit("dropout_grad", {ctx.output_grad()}, ctx.node().attrs));
    ctx.SetGrad(0, d);
    return Status::Ok();
  }
};

}  // namespace

uint64_t DropoutKey(const RunInfo& info, std::string_view node) {
  return Mix(info.seed ^ Mix(static_cast<uint64_t>(info.step) ^ Fnv1a(node)));
}

bool DropoutKeeps(uint64_t key, int64_t index, double p) {
  const uint64_t bits = Mix(key + static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15ULL);
  const double u = static_cast<double>(bits >> 11) * 0x1.0p-53;
  return u >= p;
}

void RegisterDropoutGates(GateRegistry& registry) {
  (void)registry.Register("dropout", std::make_unique<DropoutGate>());
  (void)registry.Register("dropout_grad", std::make_unique<DropoutGradGate>());
}

}  // namespace backflow
