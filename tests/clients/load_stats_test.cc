// backflow-load's statistics (clients/load/stats.h): nearest-rank percentiles on known data,
// counts and merging.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "clients/load/stats.h"

namespace backflow::load {
namespace {

std::vector<double> OneTo(int n) {
  std::vector<double> values(static_cast<size_t>(n));
  std::iota(values.begin(), values.end(), 1.0);
  return values;
}

TEST(PercentileTest, NearestRankOnOneToThousand) {
  const std::vector<double> values = OneTo(1000);
  EXPECT_EQ(Percentile(values, 50), 500);
  EXPECT_EQ(Percentile(values, 90), 900);
  EXPECT_EQ(Percentile(values, 99), 990);
  // 99.9 / 100 * 1000 is not exactly 999 in binary floating point: rank 999, not 1000.
  EXPECT_EQ(Percentile(values, 99.9), 999);
  EXPECT_EQ(Percentile(values, 100), 1000);
  EXPECT_EQ(Percentile(values, 0.05), 1);  // rank ceil(0.5) = 1
}

TEST(PercentileTest, SmallSamplesPickObservedValues) {
  EXPECT_EQ(Percentile({7}, 50), 7);
  EXPECT_EQ(Percentile({7}, 99.9), 7);
  const std::vector<double> ten = OneTo(10);
  EXPECT_EQ(Percentile(ten, 50), 5);
  EXPECT_EQ(Percentile(ten, 51), 6);
  EXPECT_EQ(Percentile(ten, 90), 9);
  EXPECT_EQ(Percentile(ten, 99), 10);
}

TEST(SummarizeTest, SortsShuffledSamples) {
  std::vector<double> values = OneTo(1000);
  std::shuffle(values.begin(), values.end(), std::mt19937(42));
  const std::optional<LatencySummary> summary = Summarize(values);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->p50, 500);
  EXPECT_EQ(summary->p90, 900);
  EXPECT_EQ(summary->p99, 990);
  EXPECT_EQ(summary->p999, 999);
  EXPECT_EQ(summary->max, 1000);
}

TEST(SummarizeTest, NothingForNoSamples) { EXPECT_FALSE(Summarize({}).has_value()); }

TEST(RpcStatsTest, CountsOkAndErrorsByCode) {
  RpcStats stats;
  stats.RecordOk(1.5);
  stats.RecordOk(2.5);
  stats.RecordError("RESOURCE_EXHAUSTED");
  stats.RecordError("NOT_FOUND");
  stats.RecordError("RESOURCE_EXHAUSTED");
  EXPECT_EQ(stats.requests(), 5);
  EXPECT_EQ(stats.ok(), 2);
  EXPECT_EQ(stats.error_count(), 3);
  const std::map<std::string, int64_t> expected = {{"NOT_FOUND", 1}, {"RESOURCE_EXHAUSTED", 2}};
  EXPECT_EQ(stats.errors(), expected);
  EXPECT_EQ(stats.latencies_ms(), (std::vector<double>{1.5, 2.5}));
}

TEST(RpcStatsTest, TotalMergesKinds) {
  StatsByKind by_kind;
  by_kind["infer"].RecordOk(3);
  by_kind["infer"].RecordError("DEADLINE_EXCEEDED");
  by_kind["train"].RecordOk(1);
  by_kind["train"].RecordOk(2);
  by_kind["train"].RecordError("DEADLINE_EXCEEDED");
  by_kind["train"].RecordError("INVALID_ARGUMENT");
  const RpcStats total = Total(by_kind);
  EXPECT_EQ(total.requests(), 6);
  EXPECT_EQ(total.ok(), 3);
  const std::map<std::string, int64_t> expected = {{"DEADLINE_EXCEEDED", 2},
                                                   {"INVALID_ARGUMENT", 1}};
  EXPECT_EQ(total.errors(), expected);
  EXPECT_EQ(Summarize(total.latencies_ms())->max, 3);
  EXPECT_EQ(Summarize(total.latencies_ms())->p50, 2);

  StatsByKind more;
  more["evaluate"].RecordOk(10);
  more["infer"].RecordError("DEADLINE_EXCEEDED");
  MergeInto(by_kind, more);
  EXPECT_EQ(by_kind.size(), 3u);
  EXPECT_EQ(by_kind["infer"].errors().at("DEADLINE_EXCEEDED"), 2);
  EXPECT_EQ(Total(by_kind).requests(), 8);
}

}  // namespace
}  // namespace backflow::load
