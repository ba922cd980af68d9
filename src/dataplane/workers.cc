#include "dataplane/workers.h"

#include <cstdlib>
#include <thread>

namespace warren::dataplane {

std::size_t worker_count_from_environment() {
  if (const char* v = std::getenv("WARREN_WORKERS")) {
    char* end = nullptr;
    unsigned long n = std::strtoul(v, &end, 10);
    if (end && *end == '\0' && n >= 1 && n <= 64)
      return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace warren::dataplane
