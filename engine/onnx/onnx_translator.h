// Internal to ImportOnnx (engine/onnx/onnx_import.h): the state of one translation.
//
// Note [Two batch sizes]
// An ONNX graph computes shapes at run time (Shape -> Gather -> ... -> Reshape); backflow's
// graphs have static shapes but for one open batch dimension. The translator folds those
// computations at import time. To know which folded integers depend on the batch, it keeps two
// engine graphs beside the proto it writes, identical but for the batch size fed to their
// placeholders (kBatchA and kBatchB), and evaluates every known integer at both sizes. An integer
// equal at both is a constant; one that differs is a multiple of the batch (x.size(0) * heads),
// and where it ends up in a reshape target it is written as -1, which backflow infers from the
// element count at run time. Integer arithmetic on a batch-dependent value must stay a whole
// multiple of the batch (checked), so nothing is folded that holds only for some batch sizes.
#ifndef BACKFLOW_ENGINE_ONNX_ONNX_TRANSLATOR_H_
#define BACKFLOW_ENGINE_ONNX_ONNX_TRANSLATOR_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backflow/v1/graph.pb.h"
#include "engine/core/shape.h"
#include "engine/core/status.h"
#include "engine/core/tensor.h"
#include "engine/ir/graph.h"
#include "engine/onnx/onnx_import.h"
#include "onnx/onnx_pb.h"

namespace backflow::onnx_import {

inline constexpr int64_t kBatchA = 3;
inline constexpr int64_t kBatchB = 5;

// A value known at import time (Note [Two batch sizes]).
struct Known {
  bool is_float = false;
  std::vector<int64_t> shape;
  std::vector<int64_t> a, b;  // integers (and booleans as 0/1) at kBatchA and kBatchB
  std::vector<double> f;  // floats

  int64_t size() const;
  bool batch_dependent() const { return !is_float && a != b; }
  static Known Ints(std::vector<int64_t> values, std::vector<int64_t> shape);
  static Known Floats(std::vector<double> values, std::vector<int64_t> shape);
};

// What an ONNX tensor name stands for.
struct Entry {
  std::string tensor;  // the backflow value, once there is one
  std::optional<Known> known;  // a value known at import time
  const onnx::TensorProto* initializer = nullptr;  // a float initializer not placed yet
  // A zero Pad waiting to be folded into the pooling or convolution that reads it: the
  // backflow tensor it pads and its spatial pads [top, left, bottom, right].
  std::optional<std::pair<std::string, std::vector<int64_t>>> pending_pad;
};

using AttrMap = google::protobuf::Map<std::string, backflow::v1::AttrValue>;

class Translator;

// One ONNX node being translated: its attributes, inputs and errors.
class NodeContext {
 public:
  NodeContext(Translator& t, const onnx::NodeProto& node) : t_(t), node_(node) {}

  const onnx::NodeProto& node() const { return node_; }
  const std::string& op() const { return node_.op_type(); }
  int num_inputs() const;  // trailing empty names (omitted optional inputs) not counted
  bool has_input(int i) const;
  int64_t opset() const;
  // The name used for the node in messages and for what it emits: its name, else its first
  // output.
  std::string label() const;

  // InvalidArgument "ONNX node 'label' (Op, opset N): message".
  Status Error(std::string_view message) const;

  const onnx::AttributeProto* attr(std::string_view name) const;
  StatusOr<int64_t> Int(std::string_view name, int64_t fallback) const;
  StatusOr<double> Float(std::string_view name, double fallback) const;
  StatusOr<std::string> String(std::string_view name, std::string fallback) const;
  StatusOr<std::vector<int64_t>> Ints(std::string_view name, std::vector<int64_t> fallback) const;

  // Input i as an entry (an error if it is not defined).
  StatusOr<Entry*> input(int i) const;
  // Input i as a backflow tensor: known values and initializers are placed in the graph.
  StatusOr<std::string> Tensor(int i) const;
  // Input i as a value known at import time (an error naming `what` if it is not).
  StatusOr<Known> KnownInput(int i, std::string_view what) const;
  bool IsKnown(int i) const;
  // The shapes of a backflow tensor at kBatchA and kBatchB.
  StatusOr<std::pair<Shape, Shape>> Shapes(const std::string& tensor) const;

  // Emits a backflow node named after output `out` (its ONNX name), or after it with `suffix`
  // for an intermediate one. Returns the node's name.
  StatusOr<std::string> Emit(int out, std::string_view suffix, std::string_view op,
                             std::vector<std::string> inputs, AttrMap attrs = {}) const;
  void Alias(int out, const std::string& tensor) const;
  void SetKnown(int out, Known value) const;
  void SetPendingPad(int out, std::string tensor, std::vector<int64_t> pads) const;
  // An error unless output i is unused (a Dropout mask, BatchNormalization's running outputs).
  Status RequireUnused(int i, std::string_view what) const;

  Translator& translator() const { return t_; }

 private:
  Translator& t_;
  const onnx::NodeProto& node_;
};

class Translator {
 public:
  Translator(const OnnxImportOptions& options, int64_t opset);

  Status CountUses(const onnx::GraphProto& graph);
  Status AddInitializer(const onnx::TensorProto& tensor);
  Status AddInput(const onnx::ValueInfoProto& input);
  Status Translate(const onnx::NodeProto& node);
  Status AddOutput(const onnx::ValueInfoProto& output);
  Status AttachLoss(const OnnxLossSpec& loss);
  OnnxImported Finish(std::string producer);

  // For NodeContext and the op translations.
  int64_t opset() const { return opset_; }
  const OnnxImportOptions& options() const { return options_; }
  Entry* Find(const std::string& onnx_name);
  void Set(const std::string& onnx_name, Entry entry) { entries_[onnx_name] = std::move(entry); }
  int uses(const std::string& onnx_name) const;
  StatusOr<std::string> Place(const NodeContext& ctx, const std::string& onnx_name, Entry& entry);
  StatusOr<std::string> PlaceKnown(const NodeContext& ctx, const Known& known);
  StatusOr<std::pair<Shape, Shape>> Shapes(const std::string& tensor) const;
  StatusOr<std::string> AddNode(std::string name, std::string_view op,
                                std::vector<std::string> inputs, AttrMap attrs);
  // `base` if no backflow value has that name, else base with the lowest free "_k" suffix.
  std::string Unique(std::string_view base) const;
  // The backflow name for an ONNX output name (made unique if a value took it already).
  std::string NameFor(const std::string& onnx_name) const;
  // Marks an initializer as running state (BatchNormalization's mean and variance).
  void MarkState(const std::string& onnx_name) { state_names_.insert(onnx_name); }

 private:
  StatusOr<std::string> PlaceInitializer(const NodeContext& ctx, const std::string& onnx_name,
                                         const onnx::TensorProto& tensor);

  OnnxImportOptions options_;
  int64_t opset_;
  backflow::v1::Graph proto_;
  Graph at_a_, at_b_;  // Note [Two batch sizes]
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<std::string, int> uses_;
  std::set<std::string> state_names_;
  std::set<std::string> frozen_;
  std::map<std::string, backflow::Tensor> values_;
  std::map<std::string, std::string> output_names_;  // ONNX graph output -> backflow tensor
};

// Decodes an ONNX tensor (raw_data or the typed fields). Float and double tensors come back as
// engine tensors; integer and boolean ones as Known. External data is refused (CVE-2022-25882).
StatusOr<backflow::Tensor> FloatTensor(const onnx::TensorProto& tensor, std::string_view what,
                                       int64_t max_elements);
StatusOr<Known> KnownFromTensor(const onnx::TensorProto& tensor, std::string_view what,
                                int64_t max_elements);
bool IsFloatType(int32_t onnx_type);
Status CheckInline(const onnx::TensorProto& tensor, std::string_view what);

// The translation of each supported op_type, and the sorted list of them.
using OpTranslation = Status (*)(const NodeContext& ctx);
const std::map<std::string, OpTranslation, std::less<>>& OpTable();

// Attribute values for emitted nodes.
backflow::v1::AttrValue IntAttr(int64_t value);
backflow::v1::AttrValue FloatAttr(double value);
backflow::v1::AttrValue IntsAttr(const std::vector<int64_t>& values);

}  // namespace backflow::onnx_import

#endif  // BACKFLOW_ENGINE_ONNX_ONNX_TRANSLATOR_H_
