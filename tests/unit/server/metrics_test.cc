#include "server/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace warren::server {
namespace {

crypto::PublicKey key(std::uint8_t b) {
  crypto::PublicKey k;
  k.bytes.fill(b);
  return k;
}

MetricsSnapshot sample_snapshot() {
  MetricsSnapshot m;
  m.status.interface = "wsrv0";
  control::PeerStatus alice;
  alice.name = "alice";
  alice.public_key = key(1);
  alice.addresses = {*net::Prefix::parse("10.8.0.2/32"), *net::Prefix::parse("fd00:8::2/128")};
  alice.rx_bytes = 1000;
  alice.tx_bytes = 2000;
  alice.rx_packets = 10;
  alice.tx_packets = 20;
  alice.last_handshake = 1765000000;
  control::PeerStatus odd;
  odd.name = "a \"quoted\" back\\slash\nnewline";
  odd.public_key = key(2);
  m.status.peers = {alice, odd};
  m.status.pool_v4 = control::PoolUsage{253, 2};
  m.drops = {{"decrypt_failed", 7}, {"send_failed", 0}};
  m.handshake_queue_depth = {{"known_endpoint", 0}, {"other", 3}};
  m.handshake_queue_dropped = {{"known_endpoint", 0}, {"other", 9}};
  m.enrollments = 4;
  m.refusals = {{"invite_expired", 2}, {"some_future_code", 1}};
  m.version = "0.1.0";
  m.commit = "abc123";
  return m;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    out.push_back(l);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line)
      return true;
  return false;
}

TEST(MetricsText, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\"b"), "a\\\"b");
  EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
  EXPECT_EQ(escape_label_value("a\nb"), "a\\nb");
  EXPECT_EQ(escape_label_value(""), "");
}

// The format as Prometheus parses it: every sample line is `name{labels} integer`, each family
// has one HELP and one TYPE line (counter or gauge) before its samples and appears once, label
// values are quoted with only escaped quotes inside, and the text ends with a newline.
TEST(MetricsText, IsWellFormedExposition) {
  const std::string text = render_metrics(sample_snapshot());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const std::regex sample_re(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? -?[0-9]+$)");
  const std::regex type_re(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
  const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  std::set<std::string> typed, helped;
  std::string current;  // the family whose TYPE line came last
  std::size_t samples = 0;
  for (const auto& l : lines_of(text)) {
    std::smatch m;
    if (std::regex_match(l, m, help_re)) {
      EXPECT_TRUE(helped.insert(m[1]).second) << "second HELP for " << m[1];
    } else if (std::regex_match(l, m, type_re)) {
      EXPECT_TRUE(typed.insert(m[1]).second) << "second TYPE for " << m[1];
      EXPECT_TRUE(helped.count(m[1])) << "TYPE before HELP for " << m[1];
      current = m[1];
    } else {
      ASSERT_TRUE(std::regex_match(l, m, sample_re)) << "not a sample line: " << l;
      EXPECT_EQ(m[1], current) << "sample outside its family: " << l;
      ++samples;
    }
  }
  EXPECT_GT(samples, 30u);
  // Counters end in _total (Prometheus naming), gauges do not.
  for (const auto& l : lines_of(text)) {
    std::smatch m;
    if (std::regex_match(l, m, type_re)) {
      EXPECT_EQ(m[2] == "counter", std::string(m[1]).ends_with("_total")) << l;
    }
  }
}

// The names and labels of MindFlavor/prometheus_wireguard_exporter, so its dashboards work.
TEST(MetricsText, PeersUseTheWireguardExporterNamesAndLabels) {
  const std::string text = render_metrics(sample_snapshot());
  const std::string labels =
      "{interface=\"wsrv0\",public_key=\"" + key(1).to_base64() +
      "\",allowed_ips=\"10.8.0.2/32,fd00:8::2/128\",friendly_name=\"alice\"}";
  EXPECT_TRUE(has_line(text, "wireguard_sent_bytes_total" + labels + " 2000")) << text;
  EXPECT_TRUE(has_line(text, "wireguard_received_bytes_total" + labels + " 1000")) << text;
  EXPECT_TRUE(has_line(text, "wireguard_latest_handshake_seconds" + labels + " 1765000000"));
  EXPECT_TRUE(has_line(text, "warren_peer_sent_packets_total" + labels + " 20"));
  EXPECT_TRUE(has_line(text, "warren_peer_received_packets_total" + labels + " 10"));
  EXPECT_TRUE(has_line(text, "# TYPE wireguard_sent_bytes_total counter"));
  EXPECT_TRUE(has_line(text, "# TYPE wireguard_latest_handshake_seconds gauge"));
  // The odd name arrives escaped, on one line.
  EXPECT_NE(text.find("friendly_name=\"a \\\"quoted\\\" back\\\\slash\\nnewline\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_TRUE(has_line(text, "warren_peers{interface=\"wsrv0\"} 2"));
}

TEST(MetricsText, ServerFamilies) {
  const std::string text = render_metrics(sample_snapshot());
  EXPECT_TRUE(has_line(text, "warren_build_info{version=\"0.1.0\",commit=\"abc123\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "warren_pool_addresses{interface=\"wsrv0\",family=\"v4\"} 253"));
  EXPECT_TRUE(has_line(text, "warren_pool_addresses_used{interface=\"wsrv0\",family=\"v4\"} 2"));
  EXPECT_EQ(text.find("family=\"v6\""), std::string::npos) << "no v6 pool, no v6 series";
  EXPECT_TRUE(has_line(
      text, "warren_dropped_packets_total{interface=\"wsrv0\",reason=\"decrypt_failed\"} 7"));
  EXPECT_TRUE(
      has_line(text, "warren_dropped_packets_total{interface=\"wsrv0\",reason=\"send_failed\"} 0"));
  EXPECT_TRUE(has_line(text, "warren_handshake_queue_depth{interface=\"wsrv0\",lane=\"other\"} 3"));
  EXPECT_TRUE(
      has_line(text, "warren_handshake_queue_dropped_total{interface=\"wsrv0\",lane=\"other\"} 9"));
  EXPECT_TRUE(has_line(text, "warren_enrollments_total{interface=\"wsrv0\"} 4"));
}

// [quic]: the QUIC transport's families; a server without [quic] has none of them.
TEST(MetricsText, QuicFamiliesOnlyWithTheTransport) {
  MetricsSnapshot m = sample_snapshot();
  EXPECT_EQ(render_metrics(m).find("warren_quic_"), std::string::npos);
  control::QuicTransportStatus q;
  q.role = "server";
  q.endpoint = ":443";
  q.clients = 2;
  q.sent = 11;
  q.received = 12;
  q.drops = {{"too_big", 3}, {"malformed", 5}};
  m.status.quic = q;
  const std::string text = render_metrics(m);
  EXPECT_TRUE(has_line(text, "warren_quic_clients{interface=\"wsrv0\"} 2")) << text;
  EXPECT_TRUE(
      has_line(text, "warren_quic_messages_total{interface=\"wsrv0\",direction=\"sent\"} 11"));
  EXPECT_TRUE(
      has_line(text, "warren_quic_messages_total{interface=\"wsrv0\",direction=\"received\"} 12"));
  EXPECT_TRUE(
      has_line(text, "warren_quic_dropped_total{interface=\"wsrv0\",reason=\"too_big\"} 3"));
  EXPECT_TRUE(
      has_line(text, "warren_quic_dropped_total{interface=\"wsrv0\",reason=\"malformed\"} 5"));
}

// Every known refusal code is a series from the start (so that rate() and alerts have one);
// a code not in the list yet is still reported.
TEST(MetricsText, RefusalsByCodeIncludeEveryKnownCode) {
  const std::string text = render_metrics(sample_snapshot());
  ASSERT_GE(known_refusal_codes().size(), 16u);
  for (std::string_view code : known_refusal_codes()) {
    const std::string prefix =
        "warren_enrollment_refusals_total{interface=\"wsrv0\",code=\"" + std::string(code) + "\"} ";
    EXPECT_TRUE(has_line(text, prefix + (code == "invite_expired" ? "2" : "0"))) << code;
  }
  EXPECT_TRUE(has_line(
      text, "warren_enrollment_refusals_total{interface=\"wsrv0\",code=\"some_future_code\"} 1"));
}

TEST(MetricsText, NoPeersStillDescribesEveryFamily) {
  MetricsSnapshot m;
  m.status.interface = "w";
  m.version = "v";
  m.commit = "c";
  const std::string text = render_metrics(m);
  EXPECT_TRUE(has_line(text, "# TYPE wireguard_sent_bytes_total counter"));
  EXPECT_EQ(text.find("wireguard_sent_bytes_total{"), std::string::npos);
  EXPECT_TRUE(has_line(text, "warren_peers{interface=\"w\"} 0"));
}

TEST(MetricsText, BuildInfoComesFromTheBuild) {
  EXPECT_FALSE(build_version().empty());
  EXPECT_NE(build_version(), "unknown") << "CMake passes PROJECT_VERSION";
  EXPECT_FALSE(build_commit().empty());
}

}  // namespace
}  // namespace warren::server

namespace warren::server {
namespace {

// Every peer appears once in each of the five per-peer families, however many there are.
TEST(MetricsText, EveryPeerInEveryPerPeerFamily) {
  MetricsSnapshot m = sample_snapshot();
  m.status.peers.clear();
  for (int i = 0; i < 1000; ++i) {
    control::PeerStatus p;
    p.name = "client" + std::to_string(i);
    p.public_key = key(static_cast<std::uint8_t>(i));
    p.public_key.bytes[1] = static_cast<std::uint8_t>(i >> 8);
    p.addresses = {*net::Prefix::parse("10.8." + std::to_string(i / 250) + "." +
                                       std::to_string(i % 250 + 1) + "/32")};
    m.status.peers.push_back(p);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = render_metrics(m);
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  RecordProperty("render_us", static_cast<int>(us));
  std::map<std::string, int> per_family;
  for (const auto& l : lines_of(text)) {
    if (l.find("friendly_name=\"client") != std::string::npos)
      ++per_family[l.substr(0, l.find('{'))];
  }
  ASSERT_EQ(per_family.size(), 5u);
  for (const auto& [name, n] : per_family)
    EXPECT_EQ(n, 1000) << name;
}

}  // namespace
}  // namespace warren::server
