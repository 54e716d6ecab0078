// Clock: the seam for time. SigV4 dates, retry sleeps, deadlines and rates all come from here,
// so tests can fake time. Implementations must be thread-safe.
#pragma once

#include <chrono>

namespace trainfeed {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() = 0;        // wall time: x-amz-date
  virtual std::chrono::steady_clock::time_point Monotonic() = 0;  // deadlines, rates
  virtual void SleepFor(std::chrono::nanoseconds duration) = 0;   // backoff
};

// The process-wide real clock.
Clock& RealClock();

}  // namespace trainfeed
