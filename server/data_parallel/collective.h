// Collective: what the ranks of a data-parallel job (`mpirun -np N backflow-server
// --data-parallel`) do together, over Open MPI.
//
// Note [MPI only when asked]
// backflow-server does not link Open MPI. Its MPI calls live in a module of their own,
// libbackflow_mpi.so beside the binary (or in the library directory it is installed to), which
// LoadMpi() opens with dlopen only under --data-parallel. So a server run without the flag
// never loads libmpi, never waits on it, and runs where Open MPI is not installed at all.
//
// Every call is collective: each rank makes the same calls in the same order (rank 0 decides the
// order and tells the others: server/data_parallel/replica.h). The module initialises MPI with
// MPI_THREAD_SERIALIZED and holds a lock around each MPI call, so calls may come from any thread,
// one at a time.
//
// Note [Dead ranks]
// Open MPI 4.1 cannot tell a rank that another one died (that is ULFM, in Open MPI 5): a
// collective call that waits for a dead rank never returns. So every call here is started
// non-blocking and polled, and gives up with UNAVAILABLE when
// - it has waited --data-parallel-timeout (60 s) for the other ranks, or
// - the process was told to stop (Interrupt: rank 0 on SIGTERM) and the call has waited
//   kInterruptGrace since then or since it began, whichever is later.
// The second is what happens by default: when a rank dies, mpirun sends SIGTERM to the others
// one second later and SIGKILL one second after that (odls_base_sigkill_timeout), so rank 0 gives
// up on the step in flight and answers its client before it is killed. Under `mpirun
// --enable-recovery` mpirun leaves the job running and the first applies. Either way the failure
// is final: the operation cannot be taken back, so every later call fails at once with the same
// error, and the job must be restarted (from its checkpoints). Interrupt does not cut a live job's
// steps short: there rank 0 waits for the others only as long as their shards take beyond its
// own, far less than the grace, so a stop (SIGTERM to rank 0) lets steps in flight finish.
#ifndef BACKFLOW_SERVER_DATA_PARALLEL_COLLECTIVE_H_
#define BACKFLOW_SERVER_DATA_PARALLEL_COLLECTIVE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/core/tensor.h"

namespace backflow::server {

class Collective {
 public:
  // How long a call waits for the other ranks once interrupted (Note [Dead ranks]).
  static constexpr std::chrono::milliseconds kInterruptGrace{500};
  // kBounded: the limits of Note [Dead ranks]; kForever: none (a rank waiting for rank 0's next
  // command, which may come hours later).
  enum class Patience { kBounded, kForever };

  virtual ~Collective() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The host this rank runs on (for the logs).
  virtual std::string host() const = 0;

  // Rank 0's `bytes` to every rank: the others' are replaced by it.
  virtual Status Broadcast(std::string* bytes, Patience patience = Patience::kBounded) = 0;
  // Rank 0 gives pieces[r] to rank r (its own is pieces[0]); every rank gets its piece in
  // `mine`. `pieces` is read on rank 0 only (size() of them).
  virtual Status Scatter(const std::vector<std::string>& pieces, std::string* mine) = 0;
  // Rank 0 gets every rank's `mine`, by rank, in `all` (others leave it untouched; null is fine).
  virtual Status Gather(const std::string& mine, std::vector<std::string>* all) = 0;
  // Element-wise sums over the ranks, in place, the same on every rank: `count` values of
  // `dtype` (float32 or float64) at `data`.
  virtual Status AllreduceSum(void* data, int64_t count, DType dtype) = 0;
  // The largest of the ranks' `value`s, on every rank.
  virtual Status AllreduceMax(int64_t* value) = 0;

  // AllreduceSum in two halves, so a rank can go on computing while it runs: Start, then
  // Finish with what Start returned, in the same order on every rank; Poll between the two lets
  // it advance (Open MPI moves it on only inside MPI calls). At most 2^31 - 1 values.
  using Pending = void*;
  virtual StatusOr<Pending> StartAllreduceSum(void* data, int64_t count, DType dtype) = 0;
  virtual void Poll(Pending pending) = 0;
  virtual Status Finish(Pending pending) = 0;

  // The limit of a call's wait for the other ranks (Note [Dead ranks]).
  virtual void SetTimeout(std::chrono::milliseconds timeout) = 0;
  // Bounds every wait, from now on, by kInterruptGrace (Note [Dead ranks]). Any thread.
  virtual void Interrupt() = 0;
  // Ends every process of the job, this one included (MPI_Abort, `code` as exit status): for rank
  // 0 once it can no longer tell the others to stop.
  [[noreturn]] virtual void Abort(int code) = 0;
};

// Once every rank knows that some rank failed: gathers the ranks' statuses and returns, on rank 0,
// the first failing rank's (prefixed "rank K: " when it is another rank's), and on the others
// their own, or Aborted when only other ranks failed. Every rank calls it, as any collective.
Status FirstFailure(Collective& collective, const Status& mine);

// Opens libbackflow_mpi.so and initialises MPI (MPI_Init_thread) in this process: one call per
// process. FailedPrecondition, saying what is missing, when the module or Open MPI's library
// cannot be loaded, or when the process was not started by mpirun (a job of one rank is fine:
// `mpirun -np 1`).
StatusOr<std::unique_ptr<Collective>> LoadMpi(const std::string& module_dir);

}  // namespace backflow::server

#endif  // BACKFLOW_SERVER_DATA_PARALLEL_COLLECTIVE_H_
