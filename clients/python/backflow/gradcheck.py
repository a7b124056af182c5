"""The report of Client.check_gradients (the CheckGradients RPC): per tensor, how many elements
were compared, the largest errors and the worst elements, analytic against numeric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from backflow.v1 import graph_pb2, service_pb2, tensor_pb2


@dataclass
class ElementCheck:
    """One compared element: flat index, multi-index, and both gradients."""

    index: int
    position: tuple[int, ...]
    analytic: float
    numeric: float
    abs_error: float
    relative_error: float


@dataclass
class TensorCheck:
    """One tensor's verdict; `worst` is worst first."""

    name: str
    shape: tuple[int, ...]
    checked: int
    total: int
    max_relative_error: float
    max_abs_error: float
    ok: bool
    worst: list[ElementCheck] = field(default_factory=list)


@dataclass
class GradientCheck:
    """The whole report: `ok` when every tensor agrees; str() is a readable table."""

    ok: bool
    loss: float
    evaluations: int
    drawn: list[str]
    tensors: list[TensorCheck]

    @classmethod
    def from_proto(cls, response: Any) -> "GradientCheck":
        tensors = [
            TensorCheck(t.name, tuple(t.shape), t.checked, t.total, t.max_relative_error,
                        t.max_abs_error, t.ok,
                        [ElementCheck(e.index, tuple(e.position), e.analytic, e.numeric,
                                      e.abs_error, e.relative_error) for e in t.worst])
            for t in response.tensors]
        return cls(response.ok, response.loss, response.evaluations, list(response.drawn),
                   tensors)

    def failed(self) -> list[str]:
        """The names of the tensors that disagree."""
        return [t.name for t in self.tensors if not t.ok]

    def __getitem__(self, name: str) -> TensorCheck:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def __str__(self) -> str:
        lines = [f"loss {self.loss:.10g}, {self.evaluations} forward runs",
                 f"{'tensor':16} {'checked':>17} {'max rel err':>12} {'max abs err':>12}  verdict"]
        for t in self.tensors:
            lines.append(f"{t.name:16} {f'{t.checked}/{t.total}':>17} "
                         f"{t.max_relative_error:12.3g} {t.max_abs_error:12.3g}  "
                         f"{'ok' if t.ok else 'MISMATCH'}")
        for t in self.tensors:
            for e in t.worst:
                where = f"{t.name}{list(e.position)}"
                lines.append(f"  {where:24} {e.analytic:16.9g} {e.numeric:16.9g}  "
                             f"rel {e.relative_error:.3g}")
        bad = self.failed()
        lines.append(f"{len(bad)} of {len(self.tensors)} tensors disagree: {', '.join(bad)}"
                     if bad else f"all {len(self.tensors)} tensors agree")
        return "\n".join(lines)


def check_gradients_request(graph: Optional[graph_pb2.Graph], model_id: Optional[str],
                            values: Mapping[str, tensor_pb2.Tensor],
                            wrt: Optional[Sequence[str]], seed: int,
                            **settings: Optional[float]) -> service_pb2.CheckGradientsRequest:
    """The request for a graph or a model; settings left None are left unset."""
    request = service_pb2.CheckGradientsRequest(wrt=list(wrt or []), seed=seed)
    if graph is not None:
        request.graph.CopyFrom(graph)
    else:
        request.model_id = model_id or ""
    for name, value in values.items():
        request.values[name].CopyFrom(value)
    for key, value in settings.items():
        if value is not None:
            setattr(request, key, value)
    return request
