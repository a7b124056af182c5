// ModelRegistry's reservations: a place taken for a model being created comes back however the
// creation ends, so the --max-models capacity never shrinks.
#include "server/model.h"

#include <gtest/gtest.h>

#include <utility>

namespace backflow::server {
namespace {

TEST(ModelRegistryTest, ReservationsCountAgainstTheLimitUntilDestroyed) {
  ModelRegistry registry(2);
  StatusOr<ModelRegistry::Reservation> a = registry.Reserve();
  StatusOr<ModelRegistry::Reservation> b = registry.Reserve();
  ASSERT_TRUE(a.ok() && b.ok());
  StatusOr<ModelRegistry::Reservation> c = registry.Reserve();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(c.status().message(),
            "the server holds its limit of 2 models (--max-models); delete one first");
  { ModelRegistry::Reservation dropped = std::move(*a); }  // a creation that failed or was cancelled
  EXPECT_TRUE(registry.Reserve().ok());  // its place is back (and given back again at once)
}

TEST(ModelRegistryTest, AMovedReservationGivesItsPlaceBackOnce) {
  ModelRegistry registry(1);
  {
    StatusOr<ModelRegistry::Reservation> r = registry.Reserve();
    ASSERT_TRUE(r.ok());
    ModelRegistry::Reservation moved = std::move(*r);
    EXPECT_TRUE(moved.held());
    EXPECT_FALSE(r->held());
    ModelRegistry::Reservation assigned;
    assigned = std::move(moved);
    EXPECT_TRUE(assigned.held());
    EXPECT_FALSE(registry.Reserve().ok());  // still one place taken, not two, not zero
  }
  StatusOr<ModelRegistry::Reservation> again = registry.Reserve();
  EXPECT_TRUE(again.ok());
  EXPECT_FALSE(registry.Reserve().ok());  // exactly one place: the count did not go below zero
}

// A token's max-models counts its reservations too, so concurrent creations by one token cannot
// overshoot its quota; moving a reservation keeps its owner, and other owners are not counted.
TEST(ModelRegistryTest, AnOwnersQuotaCountsItsReservations) {
  ModelRegistry registry(10);
  StatusOr<ModelRegistry::Reservation> first = registry.Reserve("team", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->owner(), "team");
  StatusOr<ModelRegistry::Reservation> second = registry.Reserve("team", 1);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(second.status().message(),
            "token 'team' holds 1 models, its max-models quota; delete one first");
  EXPECT_TRUE(registry.Reserve("ops", 1).ok());
  EXPECT_TRUE(registry.Reserve().ok());
  {
    ModelRegistry::Reservation moved = std::move(*first);
    EXPECT_EQ(moved.owner(), "team");
    EXPECT_FALSE(registry.Reserve("team", 1).ok());
  }
  EXPECT_TRUE(registry.Reserve("team", 1).ok());  // given back once the reservation ended
}

}  // namespace
}  // namespace backflow::server
