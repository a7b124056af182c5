// Test clients of DownloadCheckpoint and UploadCheckpoint: a whole checkpoint stream into
// memory, and back out in chunks of a chosen size.
#ifndef BACKFLOW_TESTS_SERVER_CHECKPOINT_STREAM_CLIENT_H_
#define BACKFLOW_TESTS_SERVER_CHECKPOINT_STREAM_CLIENT_H_

#include <algorithm>
#include <chrono>
#include <string>

#include "tests/server/server_fixture.h"

namespace backflow::testing {

struct DownloadedCheckpoint {
  v1::CheckpointHeader header;
  std::string data;     // every chunk's bytes, in order
  int messages = 0;     // messages received, the header's included
  size_t largest = 0;   // the largest chunk of data
  bool header_first = true;  // only the first message carried a header
};

inline grpc::Status DownloadCheckpoint(v1::Backflow::Stub& stub,
                                       const v1::DownloadCheckpointRequest& request,
                                       DownloadedCheckpoint* out,
                                       std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto context = Context(timeout);
  auto reader = stub.DownloadCheckpoint(context.get(), request);
  v1::CheckpointChunk chunk;
  while (reader->Read(&chunk)) {
    if (out->messages == 0) {
      out->header = chunk.header();
      out->header_first = chunk.has_header();
    } else if (chunk.has_header()) {
      out->header_first = false;
    }
    ++out->messages;
    out->largest = std::max(out->largest, chunk.data().size());
    out->data += chunk.data();
  }
  return reader->Finish();
}

inline grpc::Status DownloadCheckpoint(v1::Backflow::Stub& stub, const std::string& id,
                                       DownloadedCheckpoint* out) {
  v1::DownloadCheckpointRequest request;
  request.set_model_id(id);
  return DownloadCheckpoint(stub, request, out);
}

// The header in the first message, then `data` in pieces of `chunk` bytes.
inline grpc::Status UploadCheckpoint(v1::Backflow::Stub& stub, const v1::CheckpointHeader& header,
                                     std::string_view data, v1::ModelInfo* info,
                                     size_t chunk = size_t{1} << 20,
                                     std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto context = Context(timeout);
  auto writer = stub.UploadCheckpoint(context.get(), info);
  v1::CheckpointChunk message;
  *message.mutable_header() = header;
  bool open = writer->Write(message);
  message.clear_header();
  for (size_t at = 0; open && at < data.size(); at += chunk) {
    message.set_data(std::string(data.substr(at, chunk)));
    open = writer->Write(message);
  }
  if (open) writer->WritesDone();
  return writer->Finish();
}

}  // namespace backflow::testing

#endif  // BACKFLOW_TESTS_SERVER_CHECKPOINT_STREAM_CLIENT_H_
