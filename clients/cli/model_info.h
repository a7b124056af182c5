// ModelInfo and OptimizerSpec as the CLI shows and takes them, and the table layout of its list
// commands; shared by `models`, `checkpoint` and `train`.
#ifndef BACKFLOW_CLIENTS_CLI_MODEL_INFO_H_
#define BACKFLOW_CLIENTS_CLI_MODEL_INFO_H_

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "backflow/v1/service.pb.h"
#include "clients/common/flags.h"
#include "engine/core/status.h"

namespace backflow::cli {

using clients::Args;
using clients::FlagKind;
using clients::FlagSpec;

// --optimizer, --lr, --momentum, --nesterov, --weight-decay.
std::vector<FlagSpec> OptimizerFlags();
// The OptimizerSpec those flags describe (unset flags: the server's defaults). InvalidArgument
// naming the flag for an unknown optimizer or a value that is not a number.
StatusOr<v1::OptimizerSpec> OptimizerFromArgs(const Args& args);
// "sgd lr=0.01 momentum=0.9 nesterov".
std::string DescribeOptimizer(const v1::OptimizerSpec& spec);

// "float32" / "float64".
std::string DTypeText(int proto_dtype);

// Every field, numbers as JSON numbers (not proto3 JSON's int64 strings), enums in lower case.
nlohmann::json ModelInfoJson(const v1::ModelInfo& info);
// The multi-line summary of `models show`.
std::string DescribeModel(const v1::ModelInfo& info);
// statistics.history as `models show --history` prints it: STEP, LOSS, each metric, TIME.
std::string HistoryTable(const v1::ModelInfo& info);
// `unix_ms` in UTC with strftime `format`; "-" for 0 (a time the server did not record).
std::string UtcTimeText(int64_t unix_ms, const char* format);
// Rows, the header first, as lines of cells padded to their column's widest and two spaces
// apart; the last cell is not padded. Callers write "-" for an empty cell, so that scripts
// can split the lines on whitespace.
std::string AlignColumns(const std::vector<std::vector<std::string>>& rows);
// The table of `models list`: ID, NAME, GRAPH, PARAMS, STEP, CHECKPOINT.
std::string ModelTable(const google::protobuf::RepeatedPtrField<v1::ModelInfo>& models);

}  // namespace backflow::cli

#endif  // BACKFLOW_CLIENTS_CLI_MODEL_INFO_H_
