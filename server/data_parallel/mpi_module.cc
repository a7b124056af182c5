// libbackflow_mpi.so: the only code of backflow that calls Open MPI (Note [MPI only when asked]
// in server/data_parallel/collective.h). A thin C interface over the MPI calls the server uses,
// opened with dlopen by LoadMpi(); server/data_parallel/collective.cc turns it into a
// Collective. Every function returns an MPI error code (MPI_SUCCESS, 0, when it worked) that
// bf_mpi_error_string describes; counts are split into pieces MPI's int counts can hold.
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t kPiece = int64_t{1} << 30;  // bytes or elements per MPI call

// A started operation: one MPI request per piece.
struct Request {
  std::vector<MPI_Request> pieces;
};

// Starts `start(offset, n)` for each piece of `count` elements of `size_of` bytes (none for 0:
// every rank knows the count, so every rank skips it); the request in *out.
template <typename Start>
int StartPieces(int64_t count, int64_t size_of, void** out, Start start) {
  auto* request = new Request;
  const int64_t per_piece = kPiece / size_of;
  for (int64_t done = 0; done < count;) {
    const int n = static_cast<int>(std::min(per_piece, count - done));
    MPI_Request piece;
    if (const int rc = start(done * size_of, n, &piece); rc != MPI_SUCCESS) {
      delete request;  // pieces already started cannot be taken back; this rank is done for
      return rc;
    }
    request->pieces.push_back(piece);
    done += n;
  }
  *out = request;
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

// Ends every process of the job (mpirun kills the others): for a rank that cannot finish the
// job's collective calls any more.
void bf_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void bf_mpi_error_string(int code, char* out, int out_len) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) std::strcpy(text, "unknown MPI error");
  std::strncpy(out, text, static_cast<size_t>(out_len - 1));
  out[out_len - 1] = '\0';
}

// Each bf_mpi_i* starts an operation and returns its request, which bf_mpi_test polls until it
// is done and bf_mpi_free then frees. A request never finished (a rank died) is left behind: MPI
// has no way to take back a started collective call.

int bf_mpi_ibcast(void* data, int64_t bytes, void** request) {
  char* p = static_cast<char*>(data);
  return StartPieces(bytes, 1, request, [p](int64_t at, int n, MPI_Request* r) {
    return MPI_Ibcast(p + at, n, MPI_BYTE, 0, MPI_COMM_WORLD, r);
  });
}

int bf_mpi_isend(const void* data, int64_t bytes, int to, void** request) {
  const char* p = static_cast<const char*>(data);
  return StartPieces(bytes, 1, request, [p, to](int64_t at, int n, MPI_Request* r) {
    return MPI_Isend(p + at, n, MPI_BYTE, to, 0, MPI_COMM_WORLD, r);
  });
}

int bf_mpi_irecv(void* data, int64_t bytes, int from, void** request) {
  char* p = static_cast<char*>(data);
  return StartPieces(bytes, 1, request, [p, from](int64_t at, int n, MPI_Request* r) {
    return MPI_Irecv(p + at, n, MPI_BYTE, from, 0, MPI_COMM_WORLD, r);
  });
}

// In place; `is_double`: float64 values, else float32.
int bf_mpi_iallreduce_sum(void* data, int64_t count, int is_double, void** request) {
  char* p = static_cast<char*>(data);
  const MPI_Datatype type = is_double ? MPI_DOUBLE : MPI_FLOAT;
  return StartPieces(
      count, is_double ? 8 : 4, request, [p, type](int64_t at, int n, MPI_Request* r) {
        return MPI_Iallreduce(MPI_IN_PLACE, p + at, n, type, MPI_SUM, MPI_COMM_WORLD, r);
      });
}

int bf_mpi_iallreduce_max(int64_t* value, void** request) {
  return StartPieces(1, 8, request, [value](int64_t, int, MPI_Request* r) {
    return MPI_Iallreduce(MPI_IN_PLACE, value, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD, r);
  });
}

// Moves a started operation on (Open MPI advances non-blocking calls only inside MPI calls);
// *done = 1 once every piece is done (and on every later call).
int bf_mpi_test(void* request, int* done) {
  auto* started = static_cast<Request*>(request);
  return MPI_Testall(static_cast<int>(started->pieces.size()), started->pieces.data(), done,
                     MPI_STATUSES_IGNORE);
}

// bf_mpi_test over and over for up to `seconds`, as MPI_Wait would (and, like it, yielding the
// core when mpirun oversubscribes it): a wait that can give up. Returning to the caller between
// single tests instead costs a 2-rank LeNet-5 job on 2 cores more than half its speed.
int bf_mpi_test_for(void* request, double seconds, int* done) {
  const double until = MPI_Wtime() + seconds;
  for (;;) {
    const int rc = bf_mpi_test(request, done);
    if (rc != MPI_SUCCESS || *done || MPI_Wtime() >= until) return rc;
  }
}

// Frees a request that bf_mpi_test found done.
void bf_mpi_free(void* request) { delete static_cast<Request*>(request); }

}  // extern "C"
