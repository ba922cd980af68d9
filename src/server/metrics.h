#pragma once
/// The server's Prometheus metrics: what one scrape reports (MetricsSnapshot, gathered by the
/// running server from the engine, the device, the enrollment server and the store) and its
/// rendering in the text exposition format (version 0.0.4: `# HELP` / `# TYPE` lines, then one
/// `name{label="value",...} number` line per series).
///
///   Server::metrics() ─► MetricsSnapshot ─► render_metrics() ─► GET /metrics body
///     (status: peers, pools; engine counters; device drop counters; enrollment answers)
///
/// Names: where a quantity is one that the common WireGuard exporters report, it has their name
/// and labels (MindFlavor/prometheus_wireguard_exporter: wireguard_sent_bytes_total,
/// wireguard_received_bytes_total, wireguard_latest_handshake_seconds with interface,
/// public_key, allowed_ips and friendly_name), so that existing dashboards and alerts work
/// unchanged; everything else is warren_*. docs/SERVER.md lists every family.
///
/// Pure: no I/O, no clock; the caller fills the snapshot.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/status.h"

namespace warren::server {

struct MetricsSnapshot {
  control::InterfaceStatus status;  ///< interface name, peers (with names), pool usage
  /// Dropped packets by reason (the device's wg::drop_name() and the engine's own), in the
  /// order to print; every known reason is present, also at 0, so that rate() has a start.
  std::vector<std::pair<std::string, std::uint64_t>> drops;
  /// Per handshake lane (wg::lane_name()): messages waiting now, and dropped because full.
  std::vector<std::pair<std::string, std::uint64_t>> handshake_queue_depth;
  std::vector<std::pair<std::string, std::uint64_t>> handshake_queue_dropped;
  /// Enrollment requests answered with success (new enrollments and re-joins).
  std::uint64_t enrollments = 0;
  /// Refused enrollment requests by answer code (docs/SERVER.md, "Enrollment protocol").
  std::map<std::string, std::uint64_t, std::less<>> refusals;
  std::string version;  ///< warren's version ("0.1.0")
  std::string commit;   ///< the source commit it was built from ("unknown" if not known)
};

/// The refusal codes the server can answer with; each is reported, also at 0.
const std::vector<std::string_view>& known_refusal_codes();

/// `value` escaped for a label value: backslash, double quote and newline as \\, \" and \n.
std::string escape_label_value(std::string_view value);

/// The whole exposition text (ends with a newline).
std::string render_metrics(const MetricsSnapshot& snapshot);

/// The version and commit this binary was built from (CMake fills them in).
std::string_view build_version();
std::string_view build_commit();

}  // namespace warren::server
