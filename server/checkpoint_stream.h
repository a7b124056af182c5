// The reactors behind DownloadCheckpoint (a server stream) and UploadCheckpoint (a client
// stream): Note [Checkpoint streams] in server/checkpoint_transfer.h says what moves; this
// says how.
//
// Each holds one of --max-streams slots (and its token's in-flight share) for as long as it is
// open, like a Train stream, and is bound by --stream-idle-timeout the same way (Note [Idle
// streams] in server/train_stream.h): a download whose client takes no chunk, or an upload that
// sends none, for that long ends with DEADLINE_EXCEEDED. The file work and the model building
// run on the ComputePool, one job at a time per stream, never on gRPC's threads; a download
// reads its next chunk only once the previous one was taken, so gRPC's flow control bounds what
// it holds to one chunk.
#ifndef BACKFLOW_SERVER_CHECKPOINT_STREAM_H_
#define BACKFLOW_SERVER_CHECKPOINT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include "backflow/v1/service.grpc.pb.h"
#include "server/service_env.h"

namespace backflow::server {

grpc::ServerWriteReactor<v1::CheckpointChunk>* NewDownloadStream(
    ServiceEnv* env, grpc::CallbackServerContext* ctx, const v1::DownloadCheckpointRequest* request);

grpc::ServerReadReactor<v1::CheckpointChunk>* NewUploadStream(ServiceEnv* env,
                                                              grpc::CallbackServerContext* ctx,
                                                              v1::ModelInfo* response);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_CHECKPOINT_STREAM_H_
