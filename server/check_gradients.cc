// ops::CheckGradients (server/operations.h): the CheckGradients RPC on engine/api/gradcheck.h.
#include <optional>
#include <string>
#include <utility>

#include "engine/api/gradcheck.h"
#include "engine/api/import.h"
#include "server/names.h"
#include "server/operations.h"

namespace backflow::server::ops {
namespace {

// What the request asks for besides its graph and values; unset fields keep the engine's
// defaults.
GradCheckSpec DecodeSpec(const ServiceEnv& env, const v1::CheckGradientsRequest& request) {
  GradCheckSpec spec;
  spec.wrt.assign(request.wrt().begin(), request.wrt().end());
  spec.seed = request.seed();
  if (request.has_epsilon()) spec.epsilon = request.epsilon();
  if (request.has_tolerance()) spec.tolerance = request.tolerance();
  if (request.has_abs_tolerance()) spec.abs_tolerance = request.abs_tolerance();
  if (request.has_max_elements_per_tensor()) {
    spec.max_elements_per_tensor = request.max_elements_per_tensor();
  }
  if (request.has_worst_k()) spec.worst_k = request.worst_k();
  if (request.has_batch()) spec.batch = request.batch();
  spec.max_evaluations = env.config.limits.max_gradcheck_runs;
  spec.max_tensor_elements = env.config.limits.max_tensor_elements;
  return spec;
}

void EncodeReport(const GradCheckReport& report, v1::CheckGradientsResponse* response) {
  response->set_ok(report.ok);
  response->set_loss(report.loss);
  response->set_evaluations(report.evaluations);
  for (const std::string& name : report.drawn) response->add_drawn(name);
  for (const GradCheckTensor& t : report.tensors) {
    v1::GradientCheckTensor* out = response->add_tensors();
    out->set_name(t.name);
    for (int64_t d : t.shape.dims()) out->add_shape(d);
    out->set_checked(t.checked);
    out->set_total(t.total);
    out->set_max_relative_error(t.max_relative_error);
    out->set_max_abs_error(t.max_abs_error);
    out->set_ok(t.ok);
    for (const GradCheckElement& e : t.worst) {
      v1::GradientCheckElement* element = out->add_worst();
      element->set_index(e.index);
      for (int64_t p : e.position) element->add_position(p);
      element->set_analytic(e.analytic);
      element->set_numeric(e.numeric);
      element->set_abs_error(e.abs_error);
      element->set_relative_error(e.relative_error);
    }
  }
}

// The request's values, over the model's current parameters and state when there is a model.
StatusOr<TensorMap> Values(const ServiceEnv& env, const v1::CheckGradientsRequest& request,
                           const Model* model) {
  BF_ASSIGN_OR_RETURN(TensorMap values,
                      DecodeTensors(request.values(), "value",
                                    env.config.limits.max_tensor_elements, std::nullopt));
  if (model == nullptr) return values;
  std::shared_ptr<const ParameterSnapshot> snapshot = model->trainer().parameters();
  for (const auto* part : {&snapshot->values, &snapshot->state}) {
    for (const auto& [name, tensor] : *part) values.emplace(name, tensor);  // given ones win
  }
  return values;
}

}  // namespace

Status CheckGradients(const ServiceEnv& env, const Model* model,
                      const v1::CheckGradientsRequest& request, const RunOptions& run,
                      v1::CheckGradientsResponse* response) {
  const v1::Graph& proto = model != nullptr ? model->record().request().graph() : request.graph();
  if (model == nullptr && !request.has_graph()) {
    return InvalidArgumentError("no graph: set graph or model_id");
  }
  BF_RETURN_IF_ERROR(CheckLengths("wrt", request.wrt(), kMaxNameBytes));
  BF_ASSIGN_OR_RETURN(Graph graph, ImportGraph(proto, env.graph_limits));
  BF_ASSIGN_OR_RETURN(TensorMap values, Values(env, request, model));
  BF_ASSIGN_OR_RETURN(
      GradCheckReport report,
      backflow::CheckGradients(std::move(graph), values, DecodeSpec(env, request), run));
  EncodeReport(report, response);
  return Status::Ok();
}

}  // namespace backflow::server::ops
