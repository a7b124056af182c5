// Data-parallel jobs (Note [Data-parallel jobs] in server/data_parallel/replica.h): `mpirun -np N
// backflow-server --data-parallel` trained over gRPC, against one Trainer in this process
// stepping on the same whole batches.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backflow/v1/service.grpc.pb.h"
#include "engine/api/import.h"
#include "engine/api/trainer.h"
#include "engine/ir/tensor_proto.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/process/process_fixture.h"
#include "tests/testing/relative_difference.h"

namespace backflow::testing {
namespace {

using std::chrono::seconds;

// mpirun for `ranks` ranks on this machine only: shared memory between the ranks, loopback for
// Open MPI's own control messages. As root (CI), Open MPI asks for the two variables it checks.
// `recovery`: mpirun leaves the job running when a rank dies (--enable-recovery).
std::vector<std::string> MpiRun(int ranks, bool recovery = false) {
  if (geteuid() == 0) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  }
  std::vector<std::string> argv = {"/usr/bin/mpirun",
                                   "--oversubscribe",
                                   "--bind-to",
                                   "none",
                                   "-np",
                                   std::to_string(ranks),
                                   "--mca",
                                   "btl",
                                   "self,vader",
                                   "--mca",
                                   "btl_vader_single_copy_mechanism",
                                   "none",
                                   "--mca",
                                   "oob_tcp_if_include",
                                   "lo"};
  if (recovery) argv.push_back("--enable-recovery");
#if defined(__SANITIZE_ADDRESS__)
  // Open MPI 4.1 frees little of what MPI_Init allocated (a follower leaves about 120 KB in 3,000
  // allocations at exit, most of them made by components LeakSanitizer cannot name once they
  // are unloaded), so under ASan the ranks exit without a leak check; the server's own code is
  // leak-checked by every other test.
  argv.insert(argv.end(), {"-x", "ASAN_OPTIONS=detect_leaks=0"});
#endif
  return argv;
}

std::string LeNetText() {
  std::FILE* f =
      std::fopen((std::string(BACKFLOW_SOURCE_DIR) + "/models/lenet5.pbtxt").c_str(), "r");
  EXPECT_NE(f, nullptr);
  std::string text;
  std::array<char, 4096> buffer;
  for (size_t n; f != nullptr && (n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0;) {
    text.append(buffer.data(), n);
  }
  if (f != nullptr) std::fclose(f);
  return text;
}

struct TrainingSetup {
  v1::OptimizerSpec optimizer;
  DType dtype;
  double tolerance;  // relative, for losses and parameters
};

std::vector<TrainingSetup> Setups() {
  v1::OptimizerSpec sgd;
  sgd.set_kind(v1::OptimizerSpec::SGD);
  sgd.set_learning_rate(0.05);
  sgd.set_momentum(0.9);
  v1::OptimizerSpec adam;
  adam.set_kind(v1::OptimizerSpec::ADAM);
  adam.set_learning_rate(0.001);
  return {
      {sgd, DType::kFloat32, 1e-5}, {adam, DType::kFloat32, 1e-5}, {adam, DType::kFloat64, 1e-12}};
}

OptimizerConfig EngineOptimizer(const v1::OptimizerSpec& spec) {
  OptimizerConfig config;
  config.kind = spec.kind() == v1::OptimizerSpec::ADAM ? OptimizerConfig::Kind::kAdam
                                                       : OptimizerConfig::Kind::kSgd;
  config.learning_rate = spec.learning_rate();
  config.momentum = spec.momentum();
  return config;
}

// Batch `k` of a fixed sequence: `rows` images and labels, in `dtype`.
std::map<std::string, Tensor> Batch(DType dtype, int64_t rows, int k) {
  std::mt19937 rng(1000 + k);
  std::normal_distribution<double> pixel(0.0, 1.0);
  std::vector<double> images(static_cast<size_t>(rows * 784)), labels(static_cast<size_t>(rows));
  for (double& p : images) p = pixel(rng);
  for (double& l : labels) l = static_cast<double>(rng() % 10);
  std::map<std::string, Tensor> batch;
  batch.emplace("images", Tensor::FromValues(dtype, Shape{rows, 1, 28, 28}, images));
  batch.emplace("labels", Tensor::FromValues(dtype, Shape{rows}, labels));
  return batch;
}

// `batch` with the label of row `row` set to `label`.
std::map<std::string, Tensor> WithLabel(std::map<std::string, Tensor> batch, int64_t row,
                                        double label) {
  std::vector<double> labels = batch.at("labels").ToDoubles();
  labels[static_cast<size_t>(row)] = label;
  batch.at("labels") = Tensor::FromValues(batch.at("labels").dtype(),
                                          Shape{static_cast<int64_t>(labels.size())}, labels);
  return batch;
}

// `batch` as a request's tensors.
void ToWire(const std::map<std::string, Tensor>& batch,
            google::protobuf::Map<std::string, v1::Tensor>* wire) {
  for (const auto& [name, tensor] : batch) TensorToProto(tensor, &(*wire)[name]);
}

// The engine's feeds of `batch` (pointing into it).
FeedMap FeedsOf(const std::map<std::string, Tensor>& batch) {
  FeedMap feeds;
  for (const auto& [name, tensor] : batch) feeds[name] = &tensor;
  return feeds;
}

double RelativeDifference(double a, double b) { return std::abs(a - b) / std::abs(b); }

class DataParallelTest : public ::testing::Test {
 protected:
  void Launch(int ranks, std::vector<std::string> flags = {}, bool recovery = false) {
    stub_.reset();
    server_ = std::make_unique<ServerProcess>();
    server_->set_launcher(MpiRun(ranks, recovery));
    flags.insert(flags.begin(), {"--data-parallel", "--checkpoint-every-steps=0"});
    ASSERT_GT(server_->Start(data_dir_.path(), flags), 0);
    stub_ = v1::Backflow::NewStub(ConnectTo(server_->address()));
  }
  // SIGTERM to rank 0 (mpirun, signalled itself, forwards it to every rank and exits 1 even
  // when they all exit 0): it drains, checkpoints, stops the other ranks, and mpirun exits 0.
  void Stop() {
    kill(RankPid(0), SIGTERM);
    const std::optional<int> status = server_->WaitForExit(seconds(60));
    EXPECT_TRUE(ExitedWith(status, 0)) << DescribeStatus(status) << "\n" << server_->output();
  }

  // The process id of `rank`, from its first log line.
  pid_t RankPid(int rank) {
    const std::regex line("data-parallel rank " + std::to_string(rank) +
                          R"( of \d+ \(pid (\d+)\))");
    std::smatch match;
    const std::string log = server_->output();
    EXPECT_TRUE(std::regex_search(log, match, line)) << log;
    return match.empty() ? -1 : std::stoi(match[1].str());
  }

  // TrainStep on batch `k` (as Train makes them).
  grpc::Status TrainStep(const std::string& id, const TrainingSetup& setup, int k,
                         v1::TrainStepResponse* response) {
    v1::TrainStepRequest request;
    request.set_model_id(id);
    ToWire(Batch(setup.dtype, 11, k), request.mutable_batch());
    return stub_->TrainStep(Deadline(seconds(30)).get(), request, response);
  }

  // After SIGKILL to rank 1, TrainStep on batches from `k` on, stepping `reference` for each
  // that succeeds, until one fails; that failure, and how long after the kill it came.
  std::pair<grpc::Status, std::chrono::milliseconds> TrainUntilRankOneIsKilled(
      const std::string& id, Trainer& reference, const TrainingSetup& setup, int* k) {
    kill(RankPid(1), SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    grpc::Status s;
    for (; *k < 1000; ++*k) {
      v1::TrainStepResponse response;
      s = TrainStep(id, setup, *k, &response);
      if (!s.ok()) break;
      EXPECT_TRUE(reference.Step(FeedsOf(Batch(setup.dtype, 11, *k))).ok());
    }
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - killed);
    std::printf("UNAVAILABLE (%s) %lld ms after rank 1 was killed\n", s.error_message().c_str(),
                static_cast<long long>(waited.count()));
    return {s, waited};
  }

  std::string Create(const TrainingSetup& setup) {
    v1::CreateModelRequest create;
    *create.mutable_graph() = *ParseGraphText(LeNetText());
    *create.mutable_optimizer() = setup.optimizer;
    create.set_seed(5);
    create.set_dtype(setup.dtype == DType::kFloat64 ? v1::FLOAT64 : v1::FLOAT32);
    v1::ModelInfo info;
    const grpc::Status s = stub_->CreateModel(Deadline(seconds(60)).get(), create, &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info.id();
  }

  // The reference: one Trainer of the same graph, seed and optimizer.
  static std::unique_ptr<Trainer> Reference(const TrainingSetup& setup) {
    StatusOr<Graph> graph = ImportGraph(*ParseGraphText(LeNetText()));
    TrainerOptions options{
        .dtype = setup.dtype, .seed = 5, .optimizer = EngineOptimizer(setup.optimizer)};
    StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(std::move(*graph), options);
    EXPECT_TRUE(trainer.ok()) << trainer.status().ToString();
    return std::move(*trainer);
  }

  // Steps [first, last) on the server and on the reference, comparing the losses.
  void Train(const std::string& id, Trainer& reference, const TrainingSetup& setup, int first,
             int last) {
    for (int k = first; k < last; ++k) {
      const std::map<std::string, Tensor> batch = Batch(setup.dtype, 11, k);
      v1::TrainStepRequest request;
      request.set_model_id(id);
      ToWire(batch, request.mutable_batch());
      v1::TrainStepResponse response;
      const grpc::Status s = stub_->TrainStep(Deadline().get(), request, &response);
      ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server_->output();
      StatusOr<StepResult> expected = reference.Step(FeedsOf(batch));
      ASSERT_TRUE(expected.ok()) << expected.status().ToString();
      EXPECT_EQ(response.step(), k + 1);
      EXPECT_LE(RelativeDifference(response.loss(), expected->loss), setup.tolerance)
          << "step " << k + 1 << ": " << response.loss() << " against " << expected->loss;
    }
  }

  void ExpectParameters(const std::string& id, const Trainer& reference,
                        const TrainingSetup& setup) {
    v1::GetParametersRequest request;
    request.set_model_id(id);
    v1::GetParametersResponse response;
    ASSERT_TRUE(stub_->GetParameters(Deadline().get(), request, &response).ok());
    std::shared_ptr<const ParameterSnapshot> want = reference.parameters();
    EXPECT_EQ(response.step(), want->step);
    ASSERT_EQ(static_cast<size_t>(response.parameters_size()), want->values.size());
    for (const auto& [name, value] : want->values) {
      StatusOr<Tensor> got =
          TensorFromProto(response.parameters().at(name), name, int64_t{1} << 30);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_LE(RelativeL2Difference(got->ToDoubles(), value.ToDoubles()), setup.tolerance)
          << "parameter " << name;
    }
  }

  ProcessTempDir data_dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::Backflow::Stub> stub_;
};

// 50 steps of SGD with momentum and of Adam (float32), and of Adam in float64, on batches of 11
// rows (shards of 6 and 5 at N = 2, 4, 4 and 3 at N = 3), equal to one process's. At N = 3 the
// gradients are summed in 64 KiB buckets, each as soon as backward has filled it: LeNet-5's
// parameters after f5_w, f5_w alone (192 KB), those before it; at N = 1 and 2 in one bucket.
// At N = 3 the ranks' copies are compared by checksum every 10 steps.
TEST_F(DataParallelTest, RanksTrainAsOneProcessDoes) {
  for (int ranks : {1, 2, 3}) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks");
    Launch(ranks, ranks == 3 ? std::vector<std::string>{"--data-parallel-bucket-bytes=65536",
                                                        "--data-parallel-checksum-steps=10"}
                             : std::vector<std::string>{});
    for (const TrainingSetup& setup : Setups()) {
      const std::string id = Create(setup);
      std::unique_ptr<Trainer> reference = Reference(setup);
      Train(id, *reference, setup, 0, 50);
      ExpectParameters(id, *reference, setup);
    }
    if (ranks == 3) {
      // Before steps 11, 21, 31 and 41 of each of the three models, every rank's copy had the
      // same checksum as rank 0's: the copies stayed bitwise equal.
      const std::string log = server_->output();
      const std::regex agree("checksum of model m-[0-9a-f]+ at step [1-4]0: 3 ranks agree");
      EXPECT_EQ(std::distance(std::sregex_iterator(log.begin(), log.end(), agree),
                              std::sregex_iterator()),
                12)
          << log;
    }
    Stop();
  }
}

// A job checkpointed at N = 2 goes on at N = 3, then at N = 1, from the same state.
TEST_F(DataParallelTest, RestartsFromItsCheckpointWithAnotherNumberOfRanks) {
  const TrainingSetup setup = Setups()[1];
  std::unique_ptr<Trainer> reference = Reference(setup);
  Launch(2);
  const std::string id = Create(setup);
  Train(id, *reference, setup, 0, 10);
  Stop();  // the drain checkpoints the model
  Launch(3);
  Train(id, *reference, setup, 10, 20);
  ExpectParameters(id, *reference, setup);
  Stop();
  Launch(1);
  Train(id, *reference, setup, 20, 25);
  ExpectParameters(id, *reference, setup);
  Stop();
}

// A label out of range in the last rank's rows fails the step on every rank, with that rank's
// error; nothing is applied, and the next step trains on as before.
TEST_F(DataParallelTest, AShardThatFailsFailsTheStepEverywhere) {
  const TrainingSetup setup = Setups()[0];
  std::unique_ptr<Trainer> reference = Reference(setup);
  Launch(3);
  const std::string id = Create(setup);
  Train(id, *reference, setup, 0, 3);
  v1::TrainStepRequest request;
  request.set_model_id(id);
  // Row 10 is in rank 2's shard (rows 8, 9, 10).
  ToWire(WithLabel(Batch(setup.dtype, 11, 99), 10, 12), request.mutable_batch());
  v1::TrainStepResponse response;
  const grpc::Status s = stub_->TrainStep(Deadline().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("rank 2: "), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("label 12"), std::string::npos) << s.error_message();
  Train(id, *reference, setup, 3, 6);  // from step 3: the failed step changed nothing anywhere
  ExpectParameters(id, *reference, setup);
  Stop();
}

// ComputeGradients is split as a step is (a bad label in rank 2's rows fails it with rank 2's
// error), answers the whole batch's loss and gradients, and changes nothing on any rank.
TEST_F(DataParallelTest, ComputeGradientsIsSplitAndAppliesNothing) {
  const TrainingSetup setup = Setups()[2];  // float64: compared within 1e-12
  std::unique_ptr<Trainer> reference = Reference(setup);
  Launch(3);
  const std::string id = Create(setup);
  Train(id, *reference, setup, 0, 2);
  for (bool bad_label : {false, true}) {
    std::map<std::string, Tensor> batch = Batch(setup.dtype, 11, 50);
    if (bad_label) batch = WithLabel(std::move(batch), 9, 12);  // rank 2 has rows 8, 9 and 10
    v1::ComputeGradientsRequest request;
    request.set_model_id(id);
    ToWire(batch, request.mutable_batch());
    v1::ComputeGradientsResponse response;
    const grpc::Status s = stub_->ComputeGradients(Deadline().get(), request, &response);
    if (bad_label) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_EQ(s.error_message().rfind("rank 2: ", 0), 0) << s.error_message();
      continue;
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    StatusOr<StepResult> expected = reference->ComputeGradients(FeedsOf(batch));
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(response.step(), 2);
    EXPECT_LE(RelativeDifference(response.loss(), expected->loss), setup.tolerance);
    ASSERT_EQ(static_cast<size_t>(response.gradients_size()), expected->gradients.size());
    for (const auto& [name, gradient] : expected->gradients) {
      StatusOr<Tensor> got = TensorFromProto(response.gradients().at(name), name, int64_t{1} << 30);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_LE(RelativeL2Difference(got->ToDoubles(), gradient.ToDoubles()), setup.tolerance)
          << "gradient of " << name;
    }
  }
  Train(id, *reference, setup, 2, 5);  // every rank still at step 2
  ExpectParameters(id, *reference, setup);
  Stop();
}

// SetParameters on rank 0 reaches every rank: the steps after it start from the values set.
TEST_F(DataParallelTest, SetParametersReachesEveryRank) {
  const TrainingSetup setup = Setups()[0];
  std::unique_ptr<Trainer> reference = Reference(setup);
  Launch(2);
  const std::string id = Create(setup);
  Train(id, *reference, setup, 0, 2);
  const Tensor& f7 = reference->parameters()->values.at("f7_b");
  const Tensor halved = Tensor::FromValues(setup.dtype, f7.shape(), [&] {
    std::vector<double> v = f7.ToDoubles();
    for (double& x : v) x = x / 2 + 0.25;
    return v;
  }());
  ASSERT_TRUE(reference->SetParameters({{"f7_b", halved}}).ok());
  v1::SetParametersRequest set;
  set.set_model_id(id);
  TensorToProto(halved, &(*set.mutable_parameters())["f7_b"]);
  v1::SetParametersResponse set_response;
  ASSERT_TRUE(stub_->SetParameters(Deadline().get(), set, &set_response).ok());
  Train(id, *reference, setup, 2, 6);
  ExpectParameters(id, *reference, setup);
  Stop();
}

// kill -9 of rank 1 while a client trains. mpirun sends the other ranks SIGTERM a second later
// and SIGKILL a second after that; rank 0 gives up on the step in flight (it waits 500 ms for the
// other ranks once told to stop) and answers UNAVAILABLE, saying why, before it is killed. A job
// started again goes on from the checkpoint.
TEST_F(DataParallelTest, ARankKilledEndsTheJobAndARestartGoesOnFromTheCheckpoint) {
  const TrainingSetup setup = Setups()[1];
  std::unique_ptr<Trainer> reference = Reference(setup);
  Launch(2, {"--checkpoint-every-steps=5"});
  const std::string id = Create(setup);
  Train(id, *reference, setup, 0, 5);  // checkpointed at step 5
  int k = 5;
  const auto [s, waited] = TrainUntilRankOneIsKilled(id, *reference, setup, &k);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("a rank has died"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("restart it (mpirun)"), std::string::npos) << s.error_message();
  EXPECT_LT(waited, seconds(5));
  const std::optional<int> status = server_->WaitForExit(seconds(60));
  EXPECT_FALSE(ExitedWith(status, 0)) << DescribeStatus(status);
  EXPECT_EQ(k, 5);  // no step after the kill succeeded, so the checkpoint holds the last one
  Launch(2);
  Train(id, *reference, setup, k, k + 5);
  ExpectParameters(id, *reference, setup);
  Stop();
}

// Under `mpirun --enable-recovery` the job outlives a rank: rank 0 gives up on the step after
// --data-parallel-timeout and answers UNAVAILABLE; later steps are refused at once, saying why,
// while reads and inference go on from rank 0's copy (no failed step changed it) and its health
// is NOT_SERVING. Stopped, it checkpoints and ends the rank left waiting (MPI_Abort); a job
// started again goes on from that checkpoint.
TEST_F(DataParallelTest, UnderRecoveryRankZeroOutlivesADeadRankAndSaysSo) {
  const TrainingSetup setup = Setups()[1];
  std::unique_ptr<Trainer> reference = Reference(setup);
  Launch(3, {"--data-parallel-timeout=2"}, /*recovery=*/true);
  const std::string id = Create(setup);
  Train(id, *reference, setup, 0, 3);
  int k = 3;
  const auto [s, waited] = TrainUntilRankOneIsKilled(id, *reference, setup, &k);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("waited 2 s (--data-parallel-timeout) for the other ranks; a "
                                   "rank has died or hangs"),
            std::string::npos)
      << s.error_message();
  EXPECT_GE(waited, seconds(2));
  EXPECT_LT(waited, seconds(10));

  v1::TrainStepResponse response;
  const grpc::Status again = TrainStep(id, setup, k, &response);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(again.error_message().rfind("the data-parallel job is broken (data-parallel ", 0), 0)
      << again.error_message();
  ExpectParameters(id, *reference, setup);  // rank 0 still reads, at the last good step
  v1::ComputeGradientsRequest gradients;    // and computes gradients, alone
  gradients.set_model_id(id);
  ToWire(Batch(setup.dtype, 11, k), gradients.mutable_batch());
  v1::ComputeGradientsResponse computed;
  const grpc::Status alone = stub_->ComputeGradients(Deadline().get(), gradients, &computed);
  EXPECT_TRUE(alone.ok()) << alone.error_message();
  EXPECT_EQ(computed.step(), reference->parameters()->step);
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(grpc::health::v1::Health::NewStub(ConnectTo(server_->address()))
                  ->Check(Deadline().get(), {}, &health)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);

  kill(RankPid(0), SIGTERM);  // drains, checkpoints, then MPI_Abort ends rank 2
  const std::optional<int> status = server_->WaitForExit(seconds(60));
  EXPECT_TRUE(status.has_value()) << "the job did not end";
  EXPECT_NE(server_->output().find("ending every rank (MPI_Abort)"), std::string::npos)
      << server_->output();
  Launch(2);
  Train(id, *reference, setup, k, k + 3);
  ExpectParameters(id, *reference, setup);
  Stop();
}

// A server without --data-parallel neither links Open MPI nor needs it.
TEST(DataParallelLinkTest, TheServerDoesNotLinkOpenMpi) {
  std::FILE* ldd = popen(("ldd " + std::string(BACKFLOW_SERVER_BINARY)).c_str(), "r");
  ASSERT_NE(ldd, nullptr);
  std::string libraries;
  std::array<char, 4096> buffer;
  for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), ldd)) > 0;)
    libraries.append(buffer.data(), n);
  pclose(ldd);
  EXPECT_NE(libraries.find("libgrpc"), std::string::npos) << libraries;
  EXPECT_EQ(libraries.find("libmpi"), std::string::npos) << libraries;
}

}  // namespace
}  // namespace backflow::testing
