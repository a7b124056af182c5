// Admission: slots for compute requests and Train streams come back exactly once, however the
// call that held one ends.
#include "server/admission.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace backflow::server {
namespace {

TEST(AdmissionTest, RequestsPastTheLimitAreRefusedUntilASlotComesBack) {
  Admission admission(/*max_requests=*/2, /*max_streams=*/1);
  StatusOr<AdmissionSlot> a = admission.AdmitRequest();
  StatusOr<AdmissionSlot> b = admission.AdmitRequest();
  ASSERT_TRUE(a.ok() && b.ok());
  StatusOr<AdmissionSlot> c = admission.AdmitRequest();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(c.status().message(),
            "more than 2 requests in flight (--max-pending-requests); retry later");
  a->Release();
  EXPECT_FALSE(a->held());
  EXPECT_TRUE(admission.AdmitRequest().ok());  // taken and given back at once
  // Streams count apart from requests.
  StatusOr<AdmissionSlot> stream = admission.AdmitStream();
  ASSERT_TRUE(stream.ok());
  StatusOr<AdmissionSlot> second = admission.AdmitStream();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "more than 1 Train streams open (--max-streams)");
}

TEST(AdmissionTest, ASlotGivesItsPlaceBackOnceWhetherMovedReleasedOrDestroyed) {
  Admission admission(1, 1);
  {
    StatusOr<AdmissionSlot> taken = admission.AdmitRequest();
    ASSERT_TRUE(taken.ok());
    AdmissionSlot moved = std::move(*taken);
    EXPECT_FALSE(taken->held());
    AdmissionSlot assigned;
    assigned = std::move(moved);
    assigned.Release();
    assigned.Release();  // a second release gives nothing back
    EXPECT_TRUE(admission.AdmitRequest().ok());
    StatusOr<AdmissionSlot> again = admission.AdmitRequest();
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(admission.AdmitRequest().ok());  // one place, held by `again`
  }  // `again` destroyed: its place comes back; the moved-from slots give nothing
  StatusOr<AdmissionSlot> last = admission.AdmitRequest();
  EXPECT_TRUE(last.ok());
  EXPECT_FALSE(admission.AdmitRequest().ok());  // exactly one: never below zero
}

TEST(AdmissionTest, DrainingRefusesEverythingNewAndKeepsWhatIsHeld) {
  Admission admission(4, 4);
  StatusOr<AdmissionSlot> held = admission.AdmitRequest();
  ASSERT_TRUE(held.ok());
  admission.StartDraining();
  const Status refused[] = {admission.AdmitRequest().status(), admission.AdmitStream().status()};
  for (const Status& status : refused) {
    EXPECT_EQ(status.code(), StatusCode::kUnavailable);
    EXPECT_EQ(status.message(), "the server is shutting down");
  }
  EXPECT_TRUE(held->held());
}

}  // namespace
}  // namespace backflow::server
