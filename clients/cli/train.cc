// backflow train: trains a model on Fashion-MNIST (or any IDX directory laid out like it) over
// the Train stream, scoring test accuracy after every epoch, like a PyTorch training script.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <numeric>
#include <optional>

#include "clients/cli/data_file.h"
#include "clients/cli/interrupt.h"
#include "clients/cli/model_info.h"
#include "clients/cli/onnx_args.h"
#include "clients/cli/progress.h"
#include "clients/cli/session.h"
#include "clients/cli/train_stream.h"
#include "engine/api/import.h"

namespace backflow::cli {
namespace {

constexpr std::string_view kCommand = "train";
constexpr int64_t kTestChunk = 1000;  // images per Infer call when scoring
constexpr size_t kFinalLossSteps = 100;

using Clock = std::chrono::steady_clock;

struct TrainOptions {
  std::string graph_path, data_dir, test_path, label_column, csv_path, model_id;
  int64_t epochs = 1, batch = 64, seed = 0, limit = -1, test_limit = -1;
  bool json = false, keep = false;
  v1::OptimizerSpec optimizer;
  std::string onnx_path;
  v1::OnnxModel onnx;  // --onnx's flags; the file is read when the model is created
};

StatusOr<TrainOptions> ParseOptions(const Args& args) {
  TrainOptions options;
  options.graph_path = args.Value("model");
  options.model_id = args.Value("model-id");
  options.data_dir = args.Value("data", "fashion-mnist");
  if (options.data_dir == "fashion-mnist") options.data_dir = kFashionMnistDir;
  options.test_path = args.Value("test");
  options.label_column = args.Value("label-column");
  if (!options.test_path.empty() && !IsDataFile(options.test_path)) {
    return InvalidArgumentError("--test takes a .npz or .csv file, not '" + options.test_path +
                                "'");
  }
  options.csv_path = args.Value("csv");
  options.json = args.Has("json");
  options.keep = args.Has("keep");
  BF_ASSIGN_OR_RETURN(options.epochs, args.Integer("epochs", 1));
  BF_ASSIGN_OR_RETURN(options.batch, args.Integer("batch", 64));
  BF_ASSIGN_OR_RETURN(options.seed, args.Integer("seed", 0));
  BF_ASSIGN_OR_RETURN(options.limit, args.Integer("limit", -1));
  BF_ASSIGN_OR_RETURN(options.test_limit, args.Integer("test-limit", -1));
  BF_ASSIGN_OR_RETURN(options.optimizer, OptimizerFromArgs(args));
  const int sources = (options.graph_path.empty() ? 0 : 1) + (args.Has("onnx") ? 1 : 0) +
                      (options.model_id.empty() ? 0 : 1);
  if (sources != 1) {
    return InvalidArgumentError(
        "give --model GRAPH.pbtxt or --onnx FILE (a new model), or --model-id ID");
  }
  BF_RETURN_IF_ERROR(CheckOnnxFlags(args, /*loss_required=*/true));
  if (args.Has("onnx")) {
    options.onnx_path = args.Value("onnx");
    options.onnx = OnnxOptionsFromArgs(args);
  }
  if (options.epochs < 1 || options.batch < 1) {
    return InvalidArgumentError("--epochs and --batch must be at least 1");
  }
  return options;
}

// One `backflow train` invocation: its data, its model and the running statistics.
class TrainingRun {
 public:
  TrainingRun(Session& session, TrainOptions options)
      : session_(session), options_(std::move(options)) {}

  int Run() {
    if (int code = LoadData(); code != kExitOk) return code;
    if (int code = ObtainModel(); code != kExitOk) return code;
    int code = Train();
    if (Interrupted()) return StopInterrupted();
    if (created_ && !options_.keep) {
      DeleteCreatedModel();
      if (code == kExitOk) {
        std::fprintf(stderr, "train: deleted model %s (add --keep to keep what it trained)\n",
                     info_.id().c_str());
      }
    } else if (created_ && code == kExitOk) {
      std::fprintf(stderr, "train: kept model %s (continue with --model-id %s)\n",
                   info_.id().c_str(), info_.id().c_str());
    }
    if (code == kExitOk && options_.json) PrintSummary();
    return code;
  }

 private:
  int Train() {
    if (!options_.csv_path.empty()) {
      csv_ = std::fopen(options_.csv_path.c_str(), "w");
      if (csv_ == nullptr) return Fail(kCommand, options_.csv_path + ": cannot write");
      std::fprintf(csv_, "step,epoch,loss,accuracy\n");
    }
    start_ = Clock::now();
    int code = kExitOk;
    for (int64_t epoch = 1; epoch <= options_.epochs && code == kExitOk && !Interrupted();
         ++epoch) {
      code = RunEpoch(epoch);
    }
    if (csv_ != nullptr) std::fclose(csv_);
    return code;
  }

  // Ctrl-C: the stream has ended at a batch boundary; checkpoint the model and keep it (a model
  // this run created and never trained is deleted instead).
  int StopInterrupted() {
    if (created_ && steps_ == 0) {
      DeleteCreatedModel();
      std::fprintf(stderr, "\ntrain: interrupted before the first step; model %s deleted\n",
                   info_.id().c_str());
      return kExitInterrupted;
    }
    v1::SaveCheckpointRequest request;
    request.set_model_id(info_.id());
    v1::SaveCheckpointResponse response;
    const grpc::Status saved =
        session_.Call(&v1::Backflow::Stub::SaveCheckpoint, request, &response);
    std::fprintf(
        stderr, "\ntrain: interrupted; model %s kept at step %lld%s\n", info_.id().c_str(),
        static_cast<long long>(response.step()),
        saved.ok() ? ", checkpointed" : (", not checkpointed: " + saved.error_message()).c_str());
    std::fprintf(stderr, "resume with: backflow --server %s train --model-id %s --data %s%s\n",
                 session_.address().c_str(), info_.id().c_str(), options_.data_dir.c_str(),
                 options_.test_path.empty() ? "" : (" --test " + options_.test_path).c_str());
    return kExitInterrupted;
  }

  int LoadData() {
    const bool data_file = IsDataFile(options_.data_dir);
    StatusOr<Dataset> train =
        data_file ? LoadDataFile(options_.data_dir, {options_.label_column, options_.limit})
                  : LoadFashionMnist(options_.data_dir, true, options_.limit);
    if (!train.ok()) return Fail(kCommand, train.status());
    train_ = std::move(*train);
    if (options_.test_limit != 0 && !options_.test_path.empty()) {
      StatusOr<Dataset> test =
          LoadDataFile(options_.test_path, {options_.label_column, options_.test_limit});
      if (!test.ok()) return Fail(kCommand, test.status());
      test_ = std::move(*test);
    } else if (options_.test_limit != 0 && !data_file) {
      StatusOr<Dataset> test = LoadFashionMnist(options_.data_dir, false, options_.test_limit);
      if (!test.ok()) return Fail(kCommand, test.status());
      test_ = std::move(*test);
    }
    if (train_.size() < options_.batch) {
      return Fail(kCommand, std::to_string(train_.size()) + " training samples make no batch of " +
                                std::to_string(options_.batch));
    }
    // One iterator for the whole run: epoch e's shuffle depends only on (seed, e).
    StatusOr<BatchIterator> batches = BatchIterator::Create(
        train_, {.batch_size = options_.batch, .seed = static_cast<uint64_t>(options_.seed)});
    if (!batches.ok()) return Fail(kCommand, batches.status());
    batches_.emplace(std::move(*batches));
    return kExitOk;
  }

  // Creates the model from --model or --onnx, or looks up --model-id; then matches the data to
  // it.
  int ObtainModel() {
    grpc::Status status;
    if (!options_.model_id.empty()) {
      status = session_.GetModel(options_.model_id, &info_);
    } else {
      v1::CreateModelRequest request;
      if (!options_.onnx_path.empty()) {
        StatusOr<std::string> bytes = ReadFileBytes(options_.onnx_path);
        if (!bytes.ok()) return Fail(kCommand, bytes.status());
        *request.mutable_onnx() = options_.onnx;
        request.mutable_onnx()->set_model(std::move(*bytes));
      } else {
        StatusOr<v1::Graph> graph = LoadGraphText(options_.graph_path);
        if (!graph.ok()) return Fail(kCommand, graph.status());
        if (graph->loss().empty()) {
          return Fail(kCommand, options_.graph_path +
                                    ": the graph has no loss, so it cannot train (name its loss "
                                    "tensor with loss: \"NAME\"; for inference use models create)");
        }
        *request.mutable_graph() = std::move(*graph);
      }
      *request.mutable_optimizer() = options_.optimizer;
      request.set_seed(static_cast<uint64_t>(options_.seed));
      status = session_.Call(&v1::Backflow::Stub::CreateModel, request, &info_);
    }
    if (!status.ok()) return session_.Fail(kCommand, status);
    created_ = options_.model_id.empty();
    StatusOr<DataFeed> feed = FeedFor(info_, train_);
    StatusOr<std::string> output = test_.size() > 0 ? ScoreOutput(info_) : std::string();
    for (const Status& fit : {feed.status(), output.status()}) {
      if (fit.ok()) continue;
      if (created_) DeleteCreatedModel();
      return Fail("train: model " + info_.id(), fit);
    }
    feed_ = std::move(*feed);
    score_output_ = *output;
    if (!options_.json) {
      std::printf("model %s (%s, %lld parameters), %lld training and %lld test samples\n",
                  info_.id().c_str(), DescribeOptimizer(info_.optimizer()).c_str(),
                  static_cast<long long>(info_.parameter_count()),
                  static_cast<long long>(train_.size()), static_cast<long long>(test_.size()));
      std::fflush(stdout);
    }
    return kExitOk;
  }

  // Best effort: a model this run created but cannot train is not left behind.
  void DeleteCreatedModel() {
    v1::DeleteModelRequest request;
    request.set_model_id(info_.id());
    v1::DeleteModelResponse response;
    (void)session_.Call(&v1::Backflow::Stub::DeleteModel, request, &response);
  }

  int RunEpoch(int64_t epoch) {
    const int64_t steps = batches_->batches_per_epoch();
    progress_.StartEpoch(epoch, steps, options_.batch);
    double loss_sum = 0;
    int64_t done = 0;
    recent_losses_.clear();
    const auto epoch_start = Clock::now();
    grpc::Status status = StreamEpoch(
        session_, info_.id(), feed_, *batches_, [&](const v1::TrainStepResponse& answer) {
          ++done;
          loss_sum += answer.loss();
          recent_losses_.push_back(answer.loss());
          if (recent_losses_.size() > kFinalLossSteps) recent_losses_.pop_front();
          WriteCsvRow(answer, epoch);
          progress_.Update(done, loss_sum / static_cast<double>(done));
        });
    const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    progress_.EndEpoch();
    steps_ += done;
    train_seconds_ += seconds;
    if (!status.ok()) return session_.Fail("train: epoch " + std::to_string(epoch), status);
    if (Interrupted()) return kExitInterrupted;
    return FinishEpoch(epoch, done > 0 ? loss_sum / static_cast<double>(done) : 0,
                       static_cast<double>(done * options_.batch) / seconds);
  }

  int FinishEpoch(int64_t epoch, double mean_loss, double samples_per_s) {
    std::string accuracy_text;
    if (test_.size() > 0) {
      grpc::Status status = TestAccuracy(session_, info_.id(), feed_, test_, score_output_,
                                         kTestChunk, &test_accuracy_);
      if (!status.ok()) return session_.Fail("train: test accuracy", status);
      char text[64];
      std::snprintf(text, sizeof text, ", test accuracy %.2f%%", 100 * test_accuracy_);
      accuracy_text = text;
    }
    std::printf("epoch %lld: loss %.4f%s, %.0f samples/s\n", static_cast<long long>(epoch),
                mean_loss, accuracy_text.c_str(), samples_per_s);
    std::fflush(stdout);
    return kExitOk;
  }

  void WriteCsvRow(const v1::TrainStepResponse& answer, int64_t epoch) {
    if (csv_ == nullptr) return;
    auto accuracy = answer.metrics().find("accuracy");
    std::fprintf(csv_, "%lld,%lld,%.9g,", static_cast<long long>(answer.step()),
                 static_cast<long long>(epoch), answer.loss());
    if (accuracy != answer.metrics().end()) std::fprintf(csv_, "%.9g", accuracy->second);
    std::fputc('\n', csv_);
  }

  void PrintSummary() const {
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const double final_loss =
        recent_losses_.empty()
            ? 0
            : std::accumulate(recent_losses_.begin(), recent_losses_.end(), 0.0) /
                  static_cast<double>(recent_losses_.size());
    nlohmann::json summary = {
        {"model_id", info_.id()},
        {"epochs", options_.epochs},
        {"steps", steps_},
        {"batch", options_.batch},
        {"final_loss", final_loss},
        {"final_loss_steps", recent_losses_.size()},
        {"test_accuracy", test_.size() > 0 ? nlohmann::json(test_accuracy_) : nullptr},
        {"test_samples", test_.size()},
        {"samples_per_s", static_cast<double>(steps_ * options_.batch) / train_seconds_},
        {"train_seconds", train_seconds_},
        {"seconds", seconds}};
    std::printf("%s\n", summary.dump().c_str());
  }

  Session& session_;
  const TrainOptions options_;
  Dataset train_, test_;
  std::optional<BatchIterator> batches_;  // over train_
  v1::ModelInfo info_;
  DataFeed feed_;
  std::string score_output_;
  std::FILE* csv_ = nullptr;
  Progress progress_{stderr, isatty(STDERR_FILENO) == 1, options_.epochs};
  Clock::time_point start_;
  int64_t steps_ = 0;
  double train_seconds_ = 0;
  double test_accuracy_ = 0;
  std::deque<double> recent_losses_;  // of the current (at the end: the last) epoch
  bool created_ = false;              // the model is this run's: deleted at the end unless --keep
};

int RunTrain(Session& session, const Args& args) {
  StatusOr<TrainOptions> options = ParseOptions(args);
  if (!options.ok()) return UsageError(kCommand, options.status().message());
  InterruptScope ctrl_c;
  return TrainingRun(session, std::move(*options)).Run();
}

std::vector<FlagSpec> TrainFlags() {
  std::vector<FlagSpec> flags = {
      {"model", FlagKind::kValue, "GRAPH.pbtxt", "create a model from this graph"},
      {"model-id", FlagKind::kValue, "ID", "continue training an existing model instead"},
      {"data", FlagKind::kValue, "fashion-mnist|DIR|FILE.npz|FILE.csv",
       "training data: an IDX directory (fashion-mnist: /usr/share/datasets/fashion-mnist), or a\n"
       "NumPy .npz with two arrays (features [N, ...], labels [N]), or CSV (label column)"},
      {"test", FlagKind::kValue, "FILE.npz|FILE.csv",
       "test data scored after every epoch (default: the IDX directory's test set)"},
      {"label-column", FlagKind::kValue, "NAME|INDEX",
       "CSV label column (default: label, labels, y, target or class, else the last)"},
      {"epochs", FlagKind::kValue, "E", "passes over the training set (default 1)"},
      {"batch", FlagKind::kValue, "B", "batch size (default 64)"},
      {"seed", FlagKind::kValue, "S", "initialisation and shuffling seed (default 0)"},
      {"limit", FlagKind::kValue, "N", "train on the first N images only (quick runs)"},
      {"test-limit", FlagKind::kValue, "N", "score on the first N test images (0: none)"},
      {"csv", FlagKind::kValue, "FILE", "write step,epoch,loss,accuracy for every step"},
      {"json", FlagKind::kSwitch, "", "end with one JSON line: model_id, steps, final_loss, ..."},
      {"keep", FlagKind::kSwitch, "",
       "keep the model this run creates (default: deleted at the end; Ctrl-C keeps it)"},
  };
  std::vector<FlagSpec> optimizer = OptimizerFlags();
  flags.insert(flags.begin() + 2, optimizer.begin(), optimizer.end());
  std::vector<FlagSpec> onnx = OnnxFlags();
  flags.insert(flags.begin() + 1, onnx.begin(), onnx.end());
  return flags;
}

}  // namespace

std::vector<Command> TrainCommands() {
  return {{
      .name = "train",
      .operands = "",
      .summary = "train on Fashion-MNIST or your .npz/CSV data; test accuracy every epoch",
      .details =
          "Example: backflow train --model models/lenet5.pbtxt --data fashion-mnist --epochs 2\n"
          "           --batch 64 --optimizer sgd --lr 0.01 --momentum 0.9\n"
          "         backflow train --onnx cnn.onnx --loss softmax_cross_entropy --epochs 2\n"
          "         backflow train --model mlp.pbtxt --data train.npz --test test.npz\n"
          "Batches are shuffled per epoch with --seed. Progress goes to stderr (a bar on a\n"
          "terminal); each epoch ends with \"epoch E: loss L, test accuracy A%, S samples/s\"\n"
          "(L: the epoch's mean loss). --json's final_loss is the mean loss of the last epoch's\n"
          "last 100 steps; samples_per_s counts training time only.\n",
      .flags = TrainFlags(),
      .run = RunTrain,
  }};
}

}  // namespace backflow::cli
