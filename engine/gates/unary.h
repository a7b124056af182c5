#ifndef BACKFLOW_ENGINE_GATES_UNARY_H_
#define BACKFLOW_ENGINE_GATES_UNARY_H_

namespace backflow {

class GateRegistry;

}  // namespace backflow

#endif  // BACKFLOW_ENGINE_GATES_UNARY_H_
