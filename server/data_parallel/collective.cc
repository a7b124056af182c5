#include "server/data_parallel/collective.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace backflow::server {
namespace {

// The functions of libbackflow_mpi.so (server/data_parallel/mpi_module.cc).
struct MpiModule {
  int (*init)(int* rank, int* size, char* host, int host_len);
  int (*finalize)();
  void (*error_string)(int code, char* out, int out_len);
  int (*bcast)(void* data, int64_t bytes);
  int (*send)(const void* data, int64_t bytes, int to);
  int (*recv)(void* data, int64_t bytes, int from);
  int (*allreduce_sum)(void* data, int64_t count, int is_double);
  int (*allreduce_max)(int64_t* value);
  int (*iallreduce_sum)(void* data, int64_t count, int is_double, void** request);
  int (*test)(void* request, int* done);
  int (*wait)(void* request);
};

class MpiCollective : public Collective {
 public:
  MpiCollective(MpiModule mpi, int rank, int size, std::string host)
      : mpi_(mpi), rank_(rank), size_(size), host_(std::move(host)) {}
  ~MpiCollective() override {
    std::lock_guard<std::mutex> lock(mu_);
    mpi_.finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string host() const override { return host_; }

  Status Broadcast(std::string* bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = static_cast<int64_t>(bytes->size());
    BF_RETURN_IF_ERROR(Check(mpi_.bcast(&n, sizeof n), "broadcast"));
    if (rank_ != 0) bytes->resize(static_cast<size_t>(n));
    return Check(mpi_.bcast(bytes->data(), n), "broadcast");
  }

  Status Scatter(const std::vector<std::string>& pieces, std::string* mine) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (rank_ != 0) return Receive(mine, 0, "scatter");
    for (int r = 1; r < size_; ++r) {
      BF_RETURN_IF_ERROR(Send(pieces[static_cast<size_t>(r)], r, "scatter"));
    }
    *mine = pieces[0];
    return Status::Ok();
  }

  Status Gather(const std::string& mine, std::vector<std::string>* all) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (rank_ != 0) return Send(mine, 0, "gather");
    all->assign(static_cast<size_t>(size_), std::string());
    (*all)[0] = mine;
    for (int r = 1; r < size_; ++r) {
      BF_RETURN_IF_ERROR(Receive(&(*all)[static_cast<size_t>(r)], r, "gather"));
    }
    return Status::Ok();
  }

  Status AllreduceSum(void* data, int64_t count, DType dtype) override {
    if (dtype != DType::kFloat32 && dtype != DType::kFloat64) {
      return InternalError("allreduce of " + std::string(DTypeName(dtype)) + " values");
    }
    std::lock_guard<std::mutex> lock(mu_);
    return Check(mpi_.allreduce_sum(data, count, dtype == DType::kFloat64 ? 1 : 0), "allreduce");
  }

  Status AllreduceMax(int64_t* value) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Check(mpi_.allreduce_max(value), "allreduce");
  }

  StatusOr<Pending> StartAllreduceSum(void* data, int64_t count, DType dtype) override {
    if (dtype != DType::kFloat32 && dtype != DType::kFloat64) {
      return InternalError("allreduce of " + std::string(DTypeName(dtype)) + " values");
    }
    std::lock_guard<std::mutex> lock(mu_);
    void* request = nullptr;
    BF_RETURN_IF_ERROR(Check(
        mpi_.iallreduce_sum(data, count, dtype == DType::kFloat64 ? 1 : 0, &request), "allreduce"));
    return request;
  }
  void Poll(Pending pending) override {
    std::lock_guard<std::mutex> lock(mu_);
    int done = 0;
    (void)mpi_.test(pending, &done);  // an error shows in Finish
  }
  Status Finish(Pending pending) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Check(mpi_.wait(pending), "allreduce");
  }

 private:
  Status Send(const std::string& bytes, int to, const char* what) {
    const int64_t n = static_cast<int64_t>(bytes.size());
    BF_RETURN_IF_ERROR(Check(mpi_.send(&n, sizeof n, to), what));
    return Check(mpi_.send(bytes.data(), n, to), what);
  }
  Status Receive(std::string* bytes, int from, const char* what) {
    int64_t n = 0;
    BF_RETURN_IF_ERROR(Check(mpi_.recv(&n, sizeof n, from), what));
    bytes->resize(static_cast<size_t>(n));
    return Check(mpi_.recv(bytes->data(), n, from), what);
  }
  // UNAVAILABLE for a failed MPI call: another rank is gone or unreachable.
  Status Check(int code, const char* what) const {
    if (code == 0) return Status::Ok();
    char text[512];
    mpi_.error_string(code, text, sizeof text);
    return UnavailableError(std::string("data-parallel ") + what + " failed on rank " +
                            std::to_string(rank_) + ": " + text);
  }

  MpiModule mpi_;
  const int rank_, size_;
  const std::string host_;
  std::mutex mu_;  // MPI_THREAD_SERIALIZED: one call at a time
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
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_error_string", &mpi.error_string));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_bcast", &mpi.bcast));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_send", &mpi.send));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_recv", &mpi.recv));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_allreduce_sum", &mpi.allreduce_sum));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_allreduce_max", &mpi.allreduce_max));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_iallreduce_sum", &mpi.iallreduce_sum));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_test", &mpi.test));
  BF_RETURN_IF_ERROR(Find(handle, "bf_mpi_wait", &mpi.wait));
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
