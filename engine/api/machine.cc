#include "engine/api/machine.h"

#include <oneapi/dnnl/dnnl.hpp>

#include "engine/runtime/core_budget.h"
#include "engine/runtime/dnnl_runtime.h"

namespace backflow {
namespace {

class DnnlSgemmProbe : public SgemmProbe {
 public:
  DnnlSgemmProbe(int64_t n, int threads, dnnl::matmul::primitive_desc pd)
      : n_(n), threads_(threads), matmul_(pd) {
    const dnnl::engine& engine = dnnl_rt::CpuEngine();
    for (dnnl::memory* m : {&a_, &b_, &c_}) {
      *m = dnnl::memory(pd.src_desc(), engine);
      auto* p = static_cast<float*>(m->get_data_handle());
      for (int64_t i = 0; i < n * n; ++i) p[i] = static_cast<float>((i % 7) + 1) * 0.125f;
    }
    args_ = {{DNNL_ARG_SRC, a_}, {DNNL_ARG_WEIGHTS, b_}, {DNNL_ARG_DST, c_}};
  }

  Status Run() override { return dnnl_rt::Execute(matmul_, args_, threads_, "sgemm"); }
  double flops() const override {
    const auto n = static_cast<double>(n_);
    return 2.0 * n * n * n;
  }

 private:
  int64_t n_;
  int threads_;
  dnnl::matmul matmul_;
  dnnl::memory a_, b_, c_;
  dnnl_rt::Args args_;
};

}  // namespace

int ComputeCores() { return CoreBudget::Global().total(); }

int PeakComputeCoresInUse() { return CoreBudget::Global().peak_in_use(); }

StatusOr<std::unique_ptr<SgemmProbe>> SgemmProbe::Create(int64_t n, int threads) {
  if (n <= 0 || threads <= 0) return InvalidArgumentError("sgemm: size and threads must be > 0");
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  BF_ASSIGN_OR_RETURN(dnnl::matmul::primitive_desc pd, dnnl_rt::Build("sgemm", [&] {
                        const dnnl::memory::desc md({n, n}, dt::f32, tag::ab);
                        return dnnl::matmul::primitive_desc(dnnl::matmul::desc(md, md, md),
                                                            dnnl_rt::CpuEngine());
                      }));
  return std::unique_ptr<SgemmProbe>(std::make_unique<DnnlSgemmProbe>(n, threads, pd));
}

}  // namespace backflow
