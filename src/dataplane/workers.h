#pragma once
/// How many workers (threads, and TUN queues) a daemon starts.

#include <cstddef>

namespace warren::dataplane {

/// WARREN_WORKERS=N when it is a decimal number from 1 to 64; otherwise (unset or invalid) one
/// worker per CPU, 1 when the CPU count is unknown. Read at start-up by warren-wg and the client.
std::size_t worker_count_from_environment();

}  // namespace warren::dataplane
