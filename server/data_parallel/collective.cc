#include "server/data_parallel/collective.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace backflow::server {
namespace {

// The functions of libbackflow_mpi.so (server/data_parallel/mpi_module.cc).
struct MpiModule {
  int (*init)(int* rank, int* size, char* host, int host_len);
  int (*finalize)();
  void (*abort)(int code);
  void (*error_string)(int code, char* out, int out_len);
  int (*ibcast)(void* data, int64_t bytes, void** request);
  int (*isend)(const void* data, int64_t bytes, int to, void** request);
  int (*irecv)(void* data, int64_t bytes, int from, void** request);
  int (*iallreduce_sum)(void* data, int64_t count, int is_double, void** request);
  int (*iallreduce_max)(int64_t* value, void** request);
  int (*test)(void* request, int* done);
  int (*test_for)(void* request, double seconds, int* done);
  void (*free)(void* request);
};

using Clock = std::chrono::steady_clock;

class MpiCollective : public Collective {
 public:
  MpiCollective(MpiModule mpi, int rank, int size, std::string host)
      : mpi_(mpi), rank_(rank), size_(size), host_(std::move(host)) {}
  ~MpiCollective() override {
    std::lock_guard<std::mutex> lock(mu_);
    // MPI_Finalize waits for the other ranks; a job that failed leaves that to mpirun.
    if (failure_.ok()) mpi_.finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string host() const override { return host_; }

  Status Broadcast(std::string* bytes, Patience patience) override {
    int64_t n = static_cast<int64_t>(bytes->size());
    BF_RETURN_IF_ERROR(
        Run("broadcast", patience, [&](void** r) { return mpi_.ibcast(&n, sizeof n, r); }));
    if (rank_ != 0) bytes->resize(static_cast<size_t>(n));
    return Run("broadcast", Patience::kBounded,
               [&](void** r) { return mpi_.ibcast(bytes->data(), n, r); });
  }

  Status Scatter(const std::vector<std::string>& pieces, std::string* mine) override {
    if (rank_ != 0) return Receive(mine, 0, "scatter");
    for (int r = 1; r < size_; ++r) {
      BF_RETURN_IF_ERROR(Send(pieces[static_cast<size_t>(r)], r, "scatter"));
    }
    *mine = pieces[0];
    return Status::Ok();
  }

  Status Gather(const std::string& mine, std::vector<std::string>* all) override {
    if (rank_ != 0) return Send(mine, 0, "gather");
    all->assign(static_cast<size_t>(size_), std::string());
    (*all)[0] = mine;
    for (int r = 1; r < size_; ++r) {
      BF_RETURN_IF_ERROR(Receive(&(*all)[static_cast<size_t>(r)], r, "gather"));
    }
    return Status::Ok();
  }

  Status AllreduceSum(void* data, int64_t count, DType dtype) override {
    BF_ASSIGN_OR_RETURN(Pending pending, StartAllreduceSum(data, count, dtype));
    return Finish(pending);
  }

  Status AllreduceMax(int64_t* value) override {
    return Run("allreduce", Patience::kBounded,
               [&](void** r) { return mpi_.iallreduce_max(value, r); });
  }

  StatusOr<Pending> StartAllreduceSum(void* data, int64_t count, DType dtype) override {
    if (dtype != DType::kFloat32 && dtype != DType::kFloat64) {
      return InternalError("allreduce of " + std::string(DTypeName(dtype)) + " values");
    }
    return Start("allreduce", [&](void** r) {
      return mpi_.iallreduce_sum(data, count, dtype == DType::kFloat64 ? 1 : 0, r);
    });
  }
  void Poll(Pending pending) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.ok()) return;
    int done = 0;
    (void)mpi_.test(pending, &done);  // an error shows in Finish
  }
  Status Finish(Pending pending) override { return Wait(pending, "allreduce", Patience::kBounded); }

  void SetTimeout(std::chrono::milliseconds timeout) override { timeout_ns_ = Ns(timeout); }
  void Interrupt() override {
    int64_t none = 0;
    interrupted_ns_.compare_exchange_strong(none, Ns(Clock::now().time_since_epoch()));
  }
  [[noreturn]] void Abort(int code) override {
    mpi_.abort(code);
    _exit(code);  // MPI_Abort does not return; should it, leave all the same
  }

 private:
  template <typename D>
  static int64_t Ns(D d) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

  // Starts an operation; the job's first failure, if any, instead.
  template <typename StartFn>
  StatusOr<Pending> Start(const char* what, StartFn start) {
    std::lock_guard<std::mutex> lock(mu_);
    BF_RETURN_IF_ERROR(failure_);
    void* request = nullptr;
    BF_RETURN_IF_ERROR(Fail(Check(start(&request), what)));
    return request;
  }
  template <typename StartFn>
  Status Run(const char* what, Patience patience, StartFn start) {
    BF_ASSIGN_OR_RETURN(Pending pending, Start(what, start));
    return Wait(pending, what, patience);
  }

  // Polls `pending` until it is done or the limits of Note [Dead ranks] pass: in slices of
  // kSlice spent inside MPI, as MPI_Wait would poll, checking the limits between them. A wait
  // without limits that has lasted a second (a rank idle between commands) tests once per
  // kIdleNap instead, so an idle job's ranks do not keep a core busy.
  Status Wait(Pending pending, const char* what, Patience patience) {
    static constexpr double kSlice = 0.01;  // seconds
    static constexpr auto kIdleNap = std::chrono::milliseconds(1);
    const int64_t began = Ns(Clock::now().time_since_epoch());
    for (bool idle = false;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        BF_RETURN_IF_ERROR(failure_);
        int done = 0;
        BF_RETURN_IF_ERROR(Fail(
            Check(idle ? mpi_.test(pending, &done) : mpi_.test_for(pending, kSlice, &done), what)));
        if (done) {
          mpi_.free(pending);
          return Status::Ok();
        }
      }
      const int64_t now = Ns(Clock::now().time_since_epoch());
      if (patience == Patience::kForever) {
        idle = now - began > Ns(std::chrono::seconds(1));
        if (idle) std::this_thread::sleep_for(kIdleNap);
        continue;
      }
      if (now - began > timeout_ns_.load()) {
        return Failed(UnavailableError(
            "data-parallel " + std::string(what) + ": rank " + std::to_string(rank_) + " waited " +
            std::to_string(timeout_ns_.load() / Ns(std::chrono::seconds(1))) +
            " s (--data-parallel-timeout) for the other ranks; a rank has died or hangs"));
      }
      const int64_t interrupted = interrupted_ns_.load();
      if (interrupted != 0 && now - std::max(began, interrupted) > Ns(kInterruptGrace)) {
        return Failed(UnavailableError(
            "data-parallel " + std::string(what) + ": rank " + std::to_string(rank_) +
            " got SIGTERM and the other ranks did not answer within " +
            std::to_string(kInterruptGrace.count()) +
            " ms; a rank has died (mpirun stops the job when one does)"));
      }
    }
  }

  Status Send(const std::string& bytes, int to, const char* what) {
    const int64_t n = static_cast<int64_t>(bytes.size());
    BF_RETURN_IF_ERROR(
        Run(what, Patience::kBounded, [&](void** r) { return mpi_.isend(&n, sizeof n, to, r); }));
    return Run(what, Patience::kBounded,
               [&](void** r) { return mpi_.isend(bytes.data(), n, to, r); });
  }
  Status Receive(std::string* bytes, int from, const char* what) {
    int64_t n = 0;
    BF_RETURN_IF_ERROR(
        Run(what, Patience::kBounded, [&](void** r) { return mpi_.irecv(&n, sizeof n, from, r); }));
    bytes->resize(static_cast<size_t>(n));
    return Run(what, Patience::kBounded,
               [&](void** r) { return mpi_.irecv(bytes->data(), n, from, r); });
  }
  // UNAVAILABLE for a failed MPI call: another rank is gone or unreachable.
  Status Check(int code, const char* what) const {
    if (code == 0) return Status::Ok();
    char text[512];
    mpi_.error_string(code, text, sizeof text);
    return UnavailableError(std::string("data-parallel ") + what + " failed on rank " +
                            std::to_string(rank_) + ": " + text);
  }
  // Records the job's first failure (Note [Dead ranks]); returns `status`.
  Status Fail(Status status) {  // REQUIRES(mu_)
    if (!status.ok() && failure_.ok()) failure_ = status;
    return status;
  }
  Status Failed(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    return Fail(std::move(status));
  }

  MpiModule mpi_;
  const int rank_, size_;
  const std::string host_;
  std::atomic<int64_t> timeout_ns_{int64_t{60} * 1000000000};
  std::atomic<int64_t> interrupted_ns_{0};  // steady clock; 0: not interrupted
  std::mutex mu_;                           // MPI_THREAD_SERIALIZED: one call at a time
  Status failure_;                          // GUARDED_BY(mu_): the job's first failure
};

template <typename F>
Status Find(void* handle, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
  if (*out == nullptr) {
    return FailedPreconditionError(std::string("libbackflow_mpi.so lacks ") + name);
  }
  return Status::Ok();
}

}  // namespace

Status FirstFailure(Collective& collective, const Status& mine) {
  // "CODE\nmessage", empty for OK.
  const std::string wire =
      mine.ok() ? std::string()
                : std::to_string(static_cast<int>(mine.code())) + "\n" + mine.message();
  std::vector<std::string> all;
  BF_RETURN_IF_ERROR(collective.Gather(wire, &all));
  if (collective.rank() != 0) {
    return mine.ok() ? AbortedError("another rank failed; nothing was applied") : mine;
  }
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    if (r == 0) return mine;
    const size_t newline = all[r].find('\n');
    return Status(static_cast<StatusCode>(std::atoi(all[r].substr(0, newline).c_str())),
                  "rank " + std::to_string(r) + ": " + all[r].substr(newline + 1));
  }
  return InternalError("a rank reported a failure but sent no error");
}

StatusOr<std::unique_ptr<Collective>> LoadMpi(const std::string& module_dir) {
  const std::string path = module_dir + "/libbackflow_mpi.so";
  // RTLD_GLOBAL: Open MPI opens its own components with dlopen and needs libmpi's symbols.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    return FailedPreconditionError(
        "--data-parallel needs Open MPI (Debian: openmpi-bin libopenmpi3) and " + path + ": " +
        (error != nullptr ? error : "cannot be opened"));
  }
  MpiModule mpi{};
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_init", &mpi.init));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_finalize", &mpi.finalize));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_abort", &mpi.abort));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_error_string", &mpi.error_string));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_ibcast", &mpi.ibcast));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_isend", &mpi.isend));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_irecv", &mpi.irecv));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_iallreduce_sum", &mpi.iallreduce_sum));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_iallreduce_max", &mpi.iallreduce_max));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_test", &mpi.test));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_test_for", &mpi.test_for));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_free", &mpi.free));
  int rank = 0, size = 0;
  char host[256] = {};
  if (const int code = mpi.init(&rank, &size, host, sizeof host); code != 0) {
    char text[512];
    mpi.error_string(code, text, sizeof text);
    return FailedPreconditionError(std::string("MPI_Init_thread failed: ") + text);
  }
  // The module stays open for the life of the process: MPI cannot be initialised twice.
  return std::unique_ptr<Collective>(new MpiCollective(mpi, rank, size, host));
}

}  // namespace backflow::server
