// backflow checkpoint save | restore | list | delete: a model's checkpoints on the server.
//
// A save without --name is an automatic checkpoint (the server keeps its --checkpoint-keep
// newest); with --name it is a named one, kept until `checkpoint delete`. Both become the
// checkpoint the model is at, which a plain restore (and a server restart) goes back to.
#include <algorithm>
#include <cstdio>

#include "clients/cli/model_info.h"
#include "clients/cli/session.h"

namespace backflow::cli {
namespace {

using Stub = v1::Backflow::Stub;
using Checkpoints = google::protobuf::RepeatedPtrField<v1::CheckpointInfo>;

// " as NAME" for a named checkpoint and nothing for an automatic one, so that an automatic
// save or restore prints the line it printed before checkpoints had names (scripts parse it).
std::string NameSuffix(const char* preposition, const std::string& name) {
  return name.empty() ? "" : preposition + name;
}

// --name NAME, "" when absent. Given empty it is an error: the server would take "" for an
// automatic checkpoint, which is not what someone who typed --name meant.
StatusOr<std::string> NameFlag(const Args& args) {
  if (!args.Has("name")) return std::string();
  return args.NonEmpty("name", "");
}

nlohmann::json CheckpointJson(const v1::CheckpointInfo& info) {
  return {{"sequence", info.sequence()}, {"name", info.name()},
          {"step", info.step()},         {"saved_unix_ms", info.saved_unix_ms()},
          {"bytes", info.bytes()},       {"current", info.current()},
          {"damage", info.damage()}};
}

// The table of `checkpoint list`. The DAMAGE column appears only when some checkpoint has
// damage; it comes last because its messages hold spaces.
std::string CheckpointTable(const Checkpoints& checkpoints) {
  const bool damaged = std::any_of(checkpoints.begin(), checkpoints.end(),
                                   [](const v1::CheckpointInfo& c) { return !c.damage().empty(); });
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "NAME", "STEP", "SAVED", "BYTES", "CURRENT"}};
  if (damaged) rows[0].push_back("DAMAGE");
  for (const v1::CheckpointInfo& c : checkpoints) {
    // ISO 8601 without spaces, so the columns split on whitespace.
    rows.push_back({std::to_string(c.sequence()), c.name().empty() ? "-" : c.name(),
                    std::to_string(c.step()), UtcTimeText(c.saved_unix_ms(), "%Y-%m-%dT%H:%M:%SZ"),
                    std::to_string(c.bytes()), c.current() ? "*" : "-"});
    if (damaged) rows.back().push_back(c.damage().empty() ? "-" : c.damage());
  }
  return AlignColumns(rows);
}

int RunSave(Session& session, const Args& args) {
  constexpr std::string_view kCommand = "checkpoint save";
  const std::string& id = args.operands()[0];
  StatusOr<std::string> name = NameFlag(args);
  if (!name.ok()) return UsageError(kCommand, name.status().message());
  if (args.Has("replace") && name->empty()) {
    return UsageError(kCommand,
                      "--replace goes with --name NAME (automatic checkpoints are "
                      "never replaced)");
  }
  v1::SaveCheckpointRequest request;
  request.set_model_id(id);
  request.set_name(*name);
  request.set_replace(args.Has("replace"));
  v1::SaveCheckpointResponse response;
  const grpc::Status status = session.Call(&Stub::SaveCheckpoint, request, &response);
  if (!status.ok()) return session.Fail("checkpoint save " + id, status);
  std::printf("saved %s at step %lld%s (%lld bytes)\n", id.c_str(),
              static_cast<long long>(response.step()), NameSuffix(" as ", *name).c_str(),
              static_cast<long long>(response.bytes()));
  return kExitOk;
}

int RunRestore(Session& session, const Args& args) {
  constexpr std::string_view kCommand = "checkpoint restore";
  const std::string& id = args.operands()[0];
  if (args.Has("name") && args.Has("step")) {
    return UsageError(kCommand, "give --name NAME or --step N, not both");
  }
  StatusOr<std::string> name = NameFlag(args);
  StatusOr<int64_t> step = args.Integer("step", 0, 0);
  for (const Status& problem : {name.status(), step.status()}) {
    if (!problem.ok()) return UsageError(kCommand, problem.message());
  }
  v1::RestoreCheckpointRequest request;
  request.set_model_id(id);
  request.set_name(*name);
  if (args.Has("step")) request.set_step(*step);
  v1::RestoreCheckpointResponse response;
  const grpc::Status status = session.Call(&Stub::RestoreCheckpoint, request, &response);
  if (!status.ok()) return session.Fail("checkpoint restore " + id, status);
  // The response's name: a restore by step or a plain one may land on a named checkpoint.
  std::printf("restored %s to step %lld%s\n", id.c_str(), static_cast<long long>(response.step()),
              NameSuffix(" from ", response.checkpoint().name()).c_str());
  return kExitOk;
}

int RunList(Session& session, const Args& args) {
  const std::string& id = args.operands()[0];
  v1::ListCheckpointsRequest request;
  request.set_model_id(id);
  v1::ListCheckpointsResponse response;
  const grpc::Status status = session.Call(&Stub::ListCheckpoints, request, &response);
  if (!status.ok()) return session.Fail("checkpoint list " + id, status);
  if (args.Has("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const v1::CheckpointInfo& info : response.checkpoints()) {
      list.push_back(CheckpointJson(info));
    }
    std::printf("%s\n", list.dump(2).c_str());
  } else {
    std::printf("%s", CheckpointTable(response.checkpoints()).c_str());
  }
  return kExitOk;
}

int RunDelete(Session& session, const Args& args) {
  constexpr std::string_view kCommand = "checkpoint delete";
  const std::string& id = args.operands()[0];
  StatusOr<std::string> name = NameFlag(args);
  if (!name.ok()) return UsageError(kCommand, name.status().message());
  if (name->empty()) {
    return UsageError(kCommand,
                      "missing --name NAME (automatic checkpoints are pruned by the server)");
  }
  v1::DeleteCheckpointRequest request;
  request.set_model_id(id);
  request.set_name(*name);
  v1::DeleteCheckpointResponse response;
  const grpc::Status status = session.Call(&Stub::DeleteCheckpoint, request, &response);
  if (!status.ok()) return session.Fail("checkpoint delete " + id, status);
  std::printf("deleted checkpoint %s of %s\n", name->c_str(), id.c_str());
  return kExitOk;
}

}  // namespace

std::vector<Command> CheckpointCommands() {
  return {
      {.name = "checkpoint save",
       .operands = "ID",
       .summary = "save parameters, optimizer state, step; print step, bytes",
       .details = "Without --name: an automatic checkpoint (the server keeps its\n"
                  "--checkpoint-keep newest). With --name: a named one, kept until\n"
                  "`checkpoint delete`. Either becomes the checkpoint the model is at.\n"
                  "Example: backflow checkpoint save m-1 --name best\n",
       .flags = {{"name", FlagKind::kValue, "NAME",
                  "a named checkpoint: 1-64 of [A-Za-z0-9_.-], not starting\nwith '.' or '-'"},
                 {"replace", FlagKind::kSwitch, "",
                  "overwrite checkpoint NAME if it exists (else ALREADY_EXISTS)"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunSave},
      {.name = "checkpoint restore",
       .operands = "ID",
       .summary = "roll the model back to a checkpoint; print its step",
       .details = "Default: the checkpoint the model is at (its latest save or restore).\n"
                  "The restored checkpoint becomes the one the model is at.\n",
       .flags = {{"name", FlagKind::kValue, "NAME", "the named checkpoint NAME"},
                 {"step", FlagKind::kValue, "N",
                  "the newest checkpoint (named or automatic) taken at step N"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunRestore},
      {.name = "checkpoint list",
       .operands = "ID",
       .summary = "a model's checkpoints, oldest first; * marks the current one",
       .details = "Columns: SEQ (order of writing), NAME (- for automatic), STEP, SAVED (UTC),\n"
                  "BYTES, CURRENT (* for the one a restart loads), and DAMAGE when a file\n"
                  "cannot be read.\n",
       .flags = {{"json", FlagKind::kSwitch, "", "print JSON"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunList},
      {.name = "checkpoint delete",
       .operands = "ID",
       .summary = "delete a named checkpoint (not the one the model is at)",
       .flags = {{"name", FlagKind::kValue, "NAME", "the checkpoint to delete (required)"}},
       .min_operands = 1,
       .max_operands = 1,
       .run = RunDelete},
  };
}

}  // namespace backflow::cli
