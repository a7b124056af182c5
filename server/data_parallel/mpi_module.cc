// libbackflow_mpi.so: the only code of backflow that calls Open MPI (Note [MPI only when asked]
// in server/data_parallel/collective.h). A thin C interface over the MPI calls the server uses,
// opened with dlopen by LoadMpi(); server/data_parallel/collective.cc turns it into a
// Collective. Every function returns an MPI error code (MPI_SUCCESS, 0, when it worked) that
// bf_mpi_error_string describes; counts are split into pieces MPI's int counts can hold.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

namespace {

constexpr int64_t kPiece = int64_t{1} << 30;  // bytes or elements per MPI call

int Bcast(void* data, int64_t count, MPI_Datatype type, int size_of) {
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < count;) {
    const int n = static_cast<int>(std::min(kPiece, count - done));
    const int rc = MPI_Bcast(p + done * size_of, n, type, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return rc;
    done += n;
  }
  return MPI_SUCCESS;
}

}  // namespace

extern "C" {

// Initialises MPI for calls from any thread, one at a time, and makes errors return codes
// instead of aborting the job.
int bf_mpi_init(int* rank, int* size, char* host, int host_len) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    if (provided < MPI_THREAD_SERIALIZED) return MPI_ERR_OTHER;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  int len = 0;
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  MPI_Get_processor_name(name, &len);
  std::strncpy(host, name, static_cast<size_t>(host_len - 1));
  host[host_len - 1] = '\0';
  return MPI_SUCCESS;
}

int bf_mpi_finalize() { return MPI_Finalize(); }

void bf_mpi_error_string(int code, char* out, int out_len) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) std::strcpy(text, "unknown MPI error");
  std::strncpy(out, text, static_cast<size_t>(out_len - 1));
  out[out_len - 1] = '\0';
}

int bf_mpi_bcast(void* data, int64_t bytes) { return Bcast(data, bytes, MPI_BYTE, 1); }

int bf_mpi_send(const void* data, int64_t bytes, int to) {
  const char* p = static_cast<const char*>(data);
  for (int64_t done = 0; done < bytes;) {
    const int n = static_cast<int>(std::min(kPiece, bytes - done));
    const int rc = MPI_Send(p + done, n, MPI_BYTE, to, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return rc;
    done += n;
  }
  return MPI_SUCCESS;
}

int bf_mpi_recv(void* data, int64_t bytes, int from) {
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < bytes;) {
    const int n = static_cast<int>(std::min(kPiece, bytes - done));
    const int rc = MPI_Recv(p + done, n, MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return rc;
    done += n;
  }
  return MPI_SUCCESS;
}

// In place; `is_double`: float64 values, else float32.
int bf_mpi_allreduce_sum(void* data, int64_t count, int is_double) {
  const MPI_Datatype type = is_double ? MPI_DOUBLE : MPI_FLOAT;
  const int size_of = is_double ? 8 : 4;
  char* p = static_cast<char*>(data);
  for (int64_t done = 0; done < count;) {
    const int n = static_cast<int>(std::min(kPiece / size_of, count - done));
    const int rc =
        MPI_Allreduce(MPI_IN_PLACE, p + done * size_of, n, type, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return rc;
    done += n;
  }
  return MPI_SUCCESS;
}

// Starts an in-place sum that bf_mpi_wait finishes (at most INT_MAX values: a bucket).
int bf_mpi_iallreduce_sum(void* data, int64_t count, int is_double, void** request) {
  if (count > INT32_MAX) return MPI_ERR_COUNT;
  MPI_Request* started = new MPI_Request;
  const int rc =
      MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count),
                     is_double ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, started);
  if (rc != MPI_SUCCESS) {
    delete started;
    return rc;
  }
  *request = started;
  return MPI_SUCCESS;
}

// Lets a started sum advance (Open MPI moves non-blocking collectives on only inside its calls).
int bf_mpi_test(void* request, int* done) {
  return MPI_Test(static_cast<MPI_Request*>(request), done, MPI_STATUS_IGNORE);
}

// Finishes a started sum and frees its request.
int bf_mpi_wait(void* request) {
  MPI_Request* started = static_cast<MPI_Request*>(request);
  const int rc = MPI_Wait(started, MPI_STATUS_IGNORE);
  delete started;
  return rc;
}

int bf_mpi_allreduce_max(int64_t* value) {
  return MPI_Allreduce(MPI_IN_PLACE, value, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
}

}  // extern "C"
