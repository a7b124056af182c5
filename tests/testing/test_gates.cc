#include "tests/testing/test_gates.h"

#include <chrono>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <thread>

namespace backflow::testing {
namespace {

using Action = std::function<Status(Probe&)>;

class ProbeKernel : public Kernel {
 public:
  ProbeKernel(std::shared_ptr<Probe> probe, Action action)
      : probe_(std::move(probe)), action_(std::move(action)) {}
  Status Run(KernelContext& ctx) const override {
    BF_RETURN_IF_ERROR(action_(*probe_));
    std::memcpy(ctx.output->raw(), ctx.inputs[0]->raw(), ctx.output->byte_size());
    return Status::Ok();
  }

 private:
  std::shared_ptr<Probe> probe_;
  Action action_;
};

class ProbeGate : public Gate {
 public:
  ProbeGate(std::shared_ptr<Probe> probe, Action action, bool differentiable = true)
      : probe_(std::move(probe)), action_(std::move(action)), differentiable_(differentiable) {}
  Arity arity() const override { return {1, 1}; }
  bool differentiable() const override { return differentiable_; }
  StatusOr<Shape> InferShape(const ShapeContext& ctx) const override { return ctx.inputs[0]; }
  StatusOr<std::unique_ptr<Kernel>> Compile(const CompileContext&) const override {
    return std::unique_ptr<Kernel>(std::make_unique<ProbeKernel>(probe_, action_));
  }
  Status Backward(BackwardContext& ctx) const override {
    if (!differentiable_) return Gate::Backward(ctx);
    ctx.SetGrad(0, ctx.output_grad());
    return Status::Ok();
  }

 private:
  std::shared_ptr<Probe> probe_;
  Action action_;
  bool differentiable_;
};

Status Rendezvous(Probe& p) {
  p.runs++;
  p.arrived++;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (p.arrived.load() < 2 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (p.arrived.load() >= 2) p.met++;
  return Status::Ok();
}

}  // namespace

std::unique_ptr<GateRegistry> MakeProbeRegistry(std::shared_ptr<Probe> probe) {
  auto registry = std::make_unique<GateRegistry>();
  RegisterBuiltinGates(*registry);
  auto add = [&](const char* op, Action action, bool differentiable = true) {
    (void)registry->Register(op, std::make_unique<ProbeGate>(probe, std::move(action),
                                                             differentiable));
  };
  add("count", [](Probe& p) { p.runs++; return Status::Ok(); });
  add("rendezvous", Rendezvous);
  add("cancel", [](Probe& p) { p.runs++; p.cancel = true; return Status::Ok(); });
  add("throw", [](Probe&) -> Status { throw std::runtime_error("boom"); });
  add("fail", [](Probe&) { return InvalidArgumentError("bad value"); });
  add("opaque", [](Probe&) { return Status::Ok(); }, /*differentiable=*/false);
  return registry;
}

}  // namespace backflow::testing
