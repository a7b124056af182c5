// The operations behind DownloadCheckpoint and UploadCheckpoint: a stored checkpoint as a
// header and a sequence of chunks, and a new model from them. Like server/operations.h they
// know nothing of gRPC; the reactors of server/checkpoint_stream.h drive them.
//
// Note [Checkpoint streams]
// A checkpoint moves as the API's CheckpointChunk messages: a CheckpointHeader (the model's
// CreateModelRequest, the step, the tensors' slots, names, dtypes and shapes) and then the
// tensors' bytes back to back, as the checkpoint file holds them (Note [Checkpoint files]), so
// neither side ever holds a message larger than a chunk and a model of any size allowed by the
// limits can move. A download reads the file a record at a time, each record's checksum checked
// before it is sent; the file is opened under the model's checkpoint mutex and read without it
// (an open file outlives its removal), so saves go on meanwhile. An upload is checked in two
// halves: the header before any bytes (every tensor must be a parameter, running state or
// optimizer slot of the model the header describes, with its dtype and shape, and every
// parameter and running state must be there), so a wrong upload fails at once and the bytes it
// may send are bounded by the model's own size; then the whole checkpoint, as a restore checks
// it. Only then is the model written (CheckpointStore::CreateModelWithCheckpoint: all or nothing
// on disk) and registered.
#ifndef BACKFLOW_SERVER_CHECKPOINT_TRANSFER_H_
#define BACKFLOW_SERVER_CHECKPOINT_TRANSFER_H_

#include <memory>
#include <optional>
#include <string>

#include "backflow/v1/service.pb.h"
#include "engine/core/status.h"
#include "server/model.h"
#include "server/service_env.h"
#include "server/storage/checkpoint_store.h"

namespace backflow::server::ops {

// A checkpoint being downloaded.
class CheckpointDownload {
 public:
  // The header and the first chunk's worth of work: opens the checkpoint the request selects
  // (the errors of RestoreCheckpoint's choice: NOT_FOUND, FAILED_PRECONDITION without any,
  // DATA_LOSS for a damaged file).
  static StatusOr<std::unique_ptr<CheckpointDownload>> Open(
      const ServiceEnv& env, Model& model, const v1::DownloadCheckpointRequest& request);

  const v1::CheckpointHeader& header() const { return header_; }
  // The next chunk of the tensors' bytes (at most kCheckpointChunkBytes): true; false at the
  // end, once every check passed. DATA_LOSS naming the file and record for a damaged one.
  StatusOr<bool> Next(std::string* chunk);

 private:
  CheckpointDownload() = default;
  v1::CheckpointHeader header_;
  OpenedCheckpoint opened_;
  // A legacy checkpoint is sent from memory: the tensor and offset reached.
  int legacy_index_ = 0;
  size_t legacy_offset_ = 0;
};

// A checkpoint being uploaded: the model its header describes, not yet registered or written.
class CheckpointUpload {
 public:
  // Builds the model (as CreateModel would, with a new id) and checks the header's tensors
  // against it (Note [Checkpoint streams]). INVALID_ARGUMENT naming the tensor otherwise.
  static StatusOr<std::unique_ptr<CheckpointUpload>> Begin(ServiceEnv& env,
                                                           const v1::CheckpointHeader& header,
                                                           const std::string& owner);
  const Model& model() const { return *model_; }
  // The next bytes; INVALID_ARGUMENT past the header's total.
  Status Append(std::string_view bytes);
  // Once the stream ended: INVALID_ARGUMENT if bytes are missing or the checkpoint does not
  // fit the model; else writes and registers the model, using up `reservation`.
  Status Finish(ServiceEnv& env, ModelRegistry::Reservation& reservation, v1::ModelInfo* info);

 private:
  CheckpointUpload(std::shared_ptr<Model> model, CheckpointAssembler assembler,
                   const v1::CheckpointHeader& header);
  std::shared_ptr<Model> model_;
  CheckpointAssembler assembler_;
  int64_t step_;
  int64_t optimizer_steps_;
  std::optional<v1::TrainingHistory> history_;  // the header's, checked
};

}  // namespace backflow::server::ops

#endif  // BACKFLOW_SERVER_CHECKPOINT_TRANSFER_H_
