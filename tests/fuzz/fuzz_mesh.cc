// The mesh codecs in one libFuzzer target (one target, not four: each adds a minute to CI).
// The first input byte picks the parser (byte % 4), the rest is its input:
//
//   0  STUN (mesh endpoint discovery; datagrams from anyone on the WireGuard socket)
//      parsing never reads out of bounds or crashes; whatever parses also passes the cheap
//      is_stun() classifier, and nothing shaped like a WireGuard message does; a parsed address
//      survives build -> parse; a request and a response built from the input's bytes parse
//      back to exactly what went in; a node's StunClient with an outstanding request of the
//      datagram's transaction id accepts it exactly when parse_binding_success does (and only
//      from the server asked), learning that address, and counts every other verdict.
//   1  roster delta (from the coordinator, over the control connection)
//      whatever decodes encodes back to the same bytes; applied to a node's roster it either
//      succeeds, leaving a consistent roster (every entry valid, names and IPv4 addresses
//      unique, the delta's version) that the coordinator's own diff reproduces, or fails with
//      a message and changes nothing; changes built from the input, made at a coordinator,
//      reach a node through diff -> encode -> decode -> apply unchanged.
//   2  relay frames (from nodes, over UDP and TCP/TLS)
//      whatever decodes as a datagram encodes back to the same bytes and is never STUN; the
//      stream reader gives the same frames (or the same error) however the bytes are split,
//      never buffers more than one frame, and its frames re-encode to the bytes consumed; a
//      key proof verifies and any changed bit of it does not; the stream's frames, sent to the
//      relay's switchboard from three connections (two authenticated as enrolled nodes A and
//      B, one not), never authenticate the third, never queue more than the bound on any
//      connection, and a frame forwarded goes to an authenticated node with a proven key; a
//      udp-auth made of the input never passes the stateless challenge (refused for its
//      cookie), and a hello's challenge is never larger than the hello.
//   3  DNS query to the mesh names responder (from any local program, over UDP or TCP)
//      answer() never crashes or leaks; it fails only for fewer than 12 bytes or the QR bit
//      (EBADMSG); a response parses with ldns, is a response (QR) to the query's id, fits the
//      UDP limit (512, or 1232 with EDNS) and is what TCP gives when not truncated; Forward
//      only for a parsed query whose name is outside the mesh domain; answers are the same
//      twice; a query built from the input's bytes as a name label gets the node's addresses
//      exactly when the label names a node (case-insensitively), NXDOMAIN otherwise; the same
//      bytes through the server's tunnel resolver (dns/forwarder.h, issue 14; here rather than
//      in a target of its own, which would add a minute to CI): a client's query goes upstream
//      unchanged but for a fresh id, and the bytes as the upstream's datagram are relayed
//      (with the client's id, within its UDP limit) exactly when they are a response to the
//      question asked, from the upstream asked.
//
// Seeds (tests/fuzz/corpus/mesh): the first byte set to 0, 1, 2 or 3 accordingly.

#include <cstdlib>
#include <memory>
#include <set>
#include <string>

#include "crypto/blake2s.h"
#include "crypto/random.h"
#include "dns/forwarder.h"
#include "dns/ldns_cxx.h"
#include "dns/message.h"
#include "fuzz_support.h"
#include "mesh/names.h"
#include "mesh/relay.h"
#include "mesh/relay_switchboard.h"
#include "mesh/roster.h"
#include "mesh/stun.h"
#include "mesh/stun_client.h"

using namespace warren;
using namespace warren::mesh;

namespace {

net::IpAddress address_from(fuzz::Cursor& in, bool v6) {
  std::uint8_t b[16];
  for (auto& x : b)
    x = in.u8();
  return *net::IpAddress::from_bytes(b, v6 ? 16 : 4);
}

void check_round_trip(const stun::TransactionId& id, const net::Endpoint& e, bool fingerprint) {
  auto b = stun::build_binding_success(id, e, fingerprint);
  WARREN_FUZZ_CHECK(stun::is_stun(b));
  auto m = stun::parse(b);
  WARREN_FUZZ_CHECK(m && m->fingerprint == fingerprint && m->type == stun::kBindingSuccess);
  auto got = stun::parse_binding_success(b, id);
  WARREN_FUZZ_CHECK(got && got->port == e.port && got->address == e.address.unmapped());
}

// --- 0: STUN ---------------------------------------------------------------------------------

void fuzz_stun(const std::uint8_t* data, std::size_t size) {
  const ConstBytes d(data, size);

  // 1. The input as a datagram.
  const bool looks_stun = stun::is_stun(d);
  auto m = stun::parse(d);
  if (m) {
    WARREN_FUZZ_CHECK(looks_stun);
    const auto& addr = m->xor_mapped ? m->xor_mapped : m->mapped;
    if (addr) {
      WARREN_FUZZ_CHECK(addr->port != 0);
      check_round_trip(m->transaction_id, *addr, m->fingerprint);
    }
  } else {
    WARREN_FUZZ_CHECK(!m.error().message.empty());
  }
  if (size >= 32 && data[0] >= 1 && data[0] <= 4 && data[1] == 0 && data[2] == 0 && data[3] == 0)
    WARREN_FUZZ_CHECK(!looks_stun);  // a WireGuard message is never taken for STUN
  if (auto id = stun::parse_binding_request(d)) {
    WARREN_FUZZ_CHECK(m && m->type == stun::kBindingRequest && *id == m->transaction_id);
  }
  if (m && size >= stun::kHeaderSize) {
    if (auto e = stun::parse_binding_success(d, m->transaction_id))
      WARREN_FUZZ_CHECK(m->type == stun::kBindingSuccess && (m->xor_mapped || m->mapped));
  }

  // 2. The input as an answer to a node's outstanding request whose id is the datagram's.
  if (size >= stun::kHeaderSize) {
    struct IdRandom final : RandomSource {
      const std::uint8_t* id;
      void fill(std::span<std::uint8_t> out) override {
        for (std::size_t i = 0; i < out.size(); ++i)
          out[i] = id[i % stun::kTransactionIdSize];
      }
    } rng;
    rng.id = data + 8;
    stun::TransactionId tid{};
    std::copy(data + 8, data + 20, tid.begin());
    const net::Endpoint server = *net::Endpoint::parse("198.51.100.1:3478");
    StunClient c({server}, rng);
    std::vector<StunClient::Request> out;
    c.tick(Now{}, out);
    WARREN_FUZZ_CHECK(out.size() == 1);
    const bool other_source = size > 20 && (data[20] & 1);
    const net::Endpoint from = other_source ? *net::Endpoint::parse("198.51.100.2:3478") : server;
    const StunVerdict v = c.on_datagram(from, d, Now{});
    auto want = stun::parse_binding_success(d, tid);
    if (v == StunVerdict::kAccepted) {
      const net::Endpoint learned{want ? want->address.unmapped() : net::IpAddress{},
                                  want ? want->port : std::uint16_t{0}};
      WARREN_FUZZ_CHECK(want && !other_source && c.results()[0].reflexive &&
                        *c.results()[0].reflexive == learned);
    } else {
      WARREN_FUZZ_CHECK(!want || other_source);
      WARREN_FUZZ_CHECK(!c.results()[0].reflexive);
    }
    const auto& k = c.counters();
    WARREN_FUZZ_CHECK(
        k.accepted + k.error_responses + k.unknown_transaction + k.wrong_source + k.malformed == 1);
  }

  // 3. The input as the fields of messages to build.
  fuzz::Cursor in(data, size);
  stun::TransactionId id{};
  for (auto& x : id)
    x = in.u8();
  const std::uint8_t flags = in.u8();
  net::Endpoint e{address_from(in, flags & 1), in.u16()};
  if (e.port == 0)
    e.port = 1;
  check_round_trip(id, e, flags & 2);
  auto req = stun::build_binding_request(id, flags & 4);
  auto rid = stun::parse_binding_request(req);
  WARREN_FUZZ_CHECK(rid && *rid == id);
}

// --- 1: roster --------------------------------------------------------------------------------

crypto::PublicKey key_of(std::uint32_t i) {
  std::uint8_t seed[4];
  store_be32(seed, i);
  crypto::PublicKey k;
  crypto::blake2s_hash({crypto::ByteView(seed, 4)}, k.bytes);
  return k;
}

// The node's roster every delta input is applied to: nodes 1..3, versions 1..3, one with
// endpoints. The roster-* seeds in tests/fuzz/corpus/mesh are deltas from exactly this roster
// (from version 3): keep them in step if it changes.
const Roster& base_roster() {
  static const Roster r = [] {
    Roster b;
    for (std::uint32_t i = 1; i <= 3; ++i) {
      auto e = make_entry(b.plan(), "node-" + std::to_string(i), key_of(i));
      if (i == 2) {
        e.local_endpoints = {*net::Endpoint::parse("192.168.1.2:51820")};
        e.reflexive = *net::Endpoint::parse("198.51.100.2:40000");
      }
      WARREN_FUZZ_CHECK(b.upsert(e));
    }
    return b;
  }();
  return r;
}

void check_consistent(const Roster& r) {
  std::set<std::string> names;
  std::set<net::IpAddress> v4s;
  for (const auto& [key, e] : r.nodes()) {
    WARREN_FUZZ_CHECK(key == e.key);
    WARREN_FUZZ_CHECK(validate_entry(r.plan(), e));
    WARREN_FUZZ_CHECK(names.insert(e.name).second);
    WARREN_FUZZ_CHECK(v4s.insert(e.v4).second);
  }
  WARREN_FUZZ_CHECK(r.size() <= kMaxNodes);
}

// Ships `c`'s changes since `node`'s version to `node` the way the service will.
void ship(const Roster& c, Roster& node) {
  auto d = c.diff(node.version());
  if (!d) {
    WARREN_FUZZ_CHECK(d.code() == ESTALE);
    d = c.diff(0);
    WARREN_FUZZ_CHECK(d);
  }
  auto bytes = encode_delta(*d);
  auto back = decode_delta(bytes);
  WARREN_FUZZ_CHECK(back && *back == *d);
  auto s = node.apply(*back);
  WARREN_FUZZ_CHECK(s);
  WARREN_FUZZ_CHECK(node.version() == c.version() && node.nodes() == c.nodes());
}

void fuzz_roster(const std::uint8_t* data, std::size_t size) {
  const ConstBytes d(data, size);

  // 1. The input as an encoded delta, applied to the node's roster.
  auto delta = decode_delta(d);
  if (!delta) {
    WARREN_FUZZ_CHECK(delta.code() == EBADMSG && !delta.error().message.empty());
  } else {
    const auto again = encode_delta(*delta);
    WARREN_FUZZ_CHECK(again.size() == size && std::equal(again.begin(), again.end(), data));
    Roster node = base_roster();
    auto s = node.apply(*delta);
    if (!s) {
      WARREN_FUZZ_CHECK(!s.error().message.empty());
      WARREN_FUZZ_CHECK(node.version() == base_roster().version());
      WARREN_FUZZ_CHECK(node.nodes() == base_roster().nodes());  // nothing half-applied
    } else {
      check_consistent(node);
      WARREN_FUZZ_CHECK(node.version() == delta->to_version);
      if (!delta->full && !delta->empty()) {
        // The node's copy now answers diff() from the base version with exactly what it was
        // given (as sorted lists), and that delta takes another copy to the same roster.
        auto redo = node.diff(base_roster().version());
        WARREN_FUZZ_CHECK(redo);
        Roster other = base_roster();
        WARREN_FUZZ_CHECK(other.apply(*redo));
        WARREN_FUZZ_CHECK(other.nodes() == node.nodes() && other.version() == node.version());
      }
    }
  }

  // 2. The input as changes at a coordinator, followed by a node.
  fuzz::Cursor in(data, size);
  Roster c = base_roster();
  Roster node = base_roster();
  for (int step = 0; step < 16 && !in.empty(); ++step) {
    const std::uint8_t op = in.u8();
    const std::uint32_t i = op % 8 + 1;
    switch (op >> 6) {
      case 0:
      case 1: {
        std::string name;
        const std::size_t len = in.u8() % 6 + 1;
        for (std::size_t k = 0; k < len; ++k)
          name += "abcdefghijklmnopqrstuvwxyz0123456789-"[in.u8() % 37];
        auto e = make_entry(c.plan(), name, key_of(i), in.u8() % 3);
        const std::size_t n = in.u8() % (kMaxLocalEndpoints + 2);
        for (std::size_t k = 0; k < n; ++k)
          e.local_endpoints.push_back(net::Endpoint{net::IpAddress::v4(0x0A000000u | in.u16()),
                                                    static_cast<std::uint16_t>(in.u16() | 1)});
        if (in.u8() & 1)
          e.reflexive = net::Endpoint{net::IpAddress::v4(0xC6336400u | in.u8()), in.u16()};
        const auto before = c.version();
        auto s = c.upsert(e);
        if (s)  // accepted means valid, and exactly one version step (or none if unchanged)
          WARREN_FUZZ_CHECK(validate_entry(c.plan(), e) && c.version() - before <= 1);
        else
          WARREN_FUZZ_CHECK(c.version() == before);
        break;
      }
      case 2:
        (void)c.revoke(key_of(i));
        break;
      default:
        (void)c.remove(key_of(i));
    }
    if (in.u8() & 1)
      ship(c, node);
  }
  check_consistent(c);
  ship(c, node);
}

// --- 2: relay ---------------------------------------------------------------------------------

class CursorRandom final : public RandomSource {
 public:
  explicit CursorRandom(std::uint8_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) {
      state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
      b = static_cast<std::uint8_t>(state_ >> 56);
    }
  }

 private:
  std::uint64_t state_;
};

// Feeds `d` to a StreamReader in chunks (sizes from `seed`; 0: all at once) and returns the
// frames re-encoded, the bytes they took, and whether the reader failed.
struct StreamRun {
  std::vector<std::vector<std::uint8_t>> frames;
  std::size_t consumed = 0;
  bool failed = false;
};

StreamRun run_stream(ConstBytes d, std::uint8_t seed) {
  StreamRun out;
  relay::StreamReader r;
  std::uint32_t x = seed;
  std::size_t pos = 0;
  while (pos < d.size() && !out.failed) {
    x = x * 1103515245u + 12345u;
    const std::size_t n =
        seed == 0 ? d.size() : std::min<std::size_t>(d.size() - pos, (x >> 16) % 97 + 1);
    ConstBytes in = d.subspan(pos, n);
    pos += n;
    for (;;) {
      auto f = r.next(in);
      if (!f) {
        WARREN_FUZZ_CHECK(f.code() == EBADMSG);
        auto again = r.next(in);  // sticky
        WARREN_FUZZ_CHECK(!again);
        out.failed = true;
        break;
      }
      WARREN_FUZZ_CHECK(r.buffered() <= relay::kMaxFrameSize);
      if (!*f)
        break;
      auto bytes = relay::encode_frame(**f);
      WARREN_FUZZ_CHECK(bytes);
      out.consumed += bytes->size();
      out.frames.push_back(std::move(*bytes));
    }
    if (!out.failed)
      WARREN_FUZZ_CHECK(in.empty());
  }
  return out;
}

// The frames of a stream, from three connections (chosen by `seed` and the frame's index):
// 1 and 2 authenticated as A and B, 3 unauthenticated (a node without an enrolled key's proof).
void run_switchboard(const std::vector<std::vector<std::uint8_t>>& frames, std::uint8_t seed) {
  CursorRandom random(seed);
  const crypto::PrivateKey ka = crypto::generate_private_key(random);
  const crypto::PrivateKey kb = crypto::generate_private_key(random);
  const crypto::PublicKey a = crypto::derive_public_key(ka), b = crypto::derive_public_key(kb);
  relay::SwitchboardOptions o;
  o.max_queued_bytes = 4096;
  o.rate_frames = 64;
  relay::Switchboard sb(
      o, [&](const crypto::PublicKey& k) { return k == a || k == b; }, random);
  const MonoTime now = MonoTime{} + std::chrono::hours(1);
  auto login = [&](relay::ConnId id, const crypto::PrivateKey& k, const crypto::PublicKey& p) {
    sb.open(id, now);
    auto ch = relay::decode_frame(sb.output(id)->front());
    WARREN_FUZZ_CHECK(ch && ch->type == relay::FrameType::kChallenge);
    auto proof = relay::prove(k, p, ch->key, ch->challenge);
    WARREN_FUZZ_CHECK(proof);
    auto auth = relay::decode_frame(relay::encode_auth(p, *proof));
    sb.frame(id, *auth, now);
    WARREN_FUZZ_CHECK(sb.node(id) == p);
  };
  login(1, ka, a);
  login(2, kb, b);
  sb.open(3, now);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const relay::ConnId from = 1 + (seed + i) % 3;
    auto f = relay::decode_frame(frames[i]);
    WARREN_FUZZ_CHECK(f);
    // Random keys name nobody: half the send frames are aimed at A or B instead (by a key bit).
    if (f->type == relay::FrameType::kSend && f->key.bytes[0] < 0x80)
      f->key = (f->key.bytes[0] & 1) ? a : b;
    sb.frame(from, *f, now + std::chrono::milliseconds(i));
    WARREN_FUZZ_CHECK(!sb.node(3));
    WARREN_FUZZ_CHECK(sb.authenticated() <= 2);
    for (relay::ConnId id = 1; id <= 3; ++id) {
      auto* out = sb.output(id);
      if (!out)
        continue;
      std::size_t queued = 0;
      for (const auto& q : *out) {
        queued += q.size();
        auto g = relay::decode_frame(q);
        WARREN_FUZZ_CHECK(g);
        // A recv frame goes only to an authenticated node and names a proven sender's key.
        if (g->type == relay::FrameType::kRecv)
          WARREN_FUZZ_CHECK(id != 3 && (g->key == a || g->key == b));
      }
      WARREN_FUZZ_CHECK(queued <= o.max_queued_bytes + relay::kControlSlack);
    }
  }
}

void fuzz_relay(const std::uint8_t* data, std::size_t size) {
  fuzz::Cursor in(data, size);
  const std::uint8_t seed = in.u8();
  const ConstBytes d = in.rest();

  // As one UDP datagram.
  auto f = relay::decode_frame(d);
  if (f) {
    WARREN_FUZZ_CHECK(relay::is_relay(d) && !stun::is_stun(d));
    auto bytes = relay::encode_frame(*f);
    WARREN_FUZZ_CHECK(bytes && std::equal(bytes->begin(), bytes->end(), d.begin(), d.end()));
  } else {
    WARREN_FUZZ_CHECK(f.code() == EBADMSG && !f.error().message.empty());
  }

  // The UDP relay's stateless challenge: a datagram that decodes as a udp-auth never
  // authenticates (its cookie cannot be this source's without the relay's secret), and is
  // refused for the cookie before any X25519; a hello's challenge is never larger than it.
  if (f && (f->type == relay::FrameType::kUdpAuth || relay::is_udp_hello(*f))) {
    static relay::StatelessChallenger sc(crypto::SystemRandom::instance());
    const std::uint8_t source[] = {192, 0, 2, seed, 0x1c, 0xdb};
    const MonoTime now{std::chrono::seconds(seed)};
    if (relay::is_udp_hello(*f)) {
      WARREN_FUZZ_CHECK(sc.challenge(source, now).size() <= d.size());
    } else {
      auto r = sc.verify(source, *f, now);
      WARREN_FUZZ_CHECK(!r && r.code() == EACCES &&
                        r.error().message.find("cookie") != std::string::npos);
    }
  }

  // As a stream, whole and split.
  const StreamRun whole = run_stream(d, 0);
  const StreamRun split = run_stream(d, static_cast<std::uint8_t>(seed | 1));
  WARREN_FUZZ_CHECK(whole.frames == split.frames && whole.failed == split.failed);
  std::size_t at = 0;
  for (const auto& fr : whole.frames) {  // the frames are the stream's bytes, in order
    WARREN_FUZZ_CHECK(
        std::equal(fr.begin(), fr.end(), d.begin() + static_cast<std::ptrdiff_t>(at)));
    at += fr.size();
  }
  WARREN_FUZZ_CHECK(whole.consumed == at && at <= d.size());
  if ((seed & 7) == 1)  // X25519 for the two logins: one input in eight
    run_switchboard(whole.frames, seed);

  // The key proof, on one input in eight (X25519 is the slow part).
  if ((seed & 7) == 0) {
    CursorRandom random(seed);
    const crypto::PrivateKey node = crypto::generate_private_key(random);
    const crypto::PublicKey pub = crypto::derive_public_key(node);
    auto c = relay::Challenger::create(random);
    auto proof = relay::prove(node, pub, c.challenge_key(), c.challenge());
    WARREN_FUZZ_CHECK(proof);
    const std::size_t bit = d.empty() ? 0 : d[0] % (relay::kProofSize * 8);
    auto c2 = relay::Challenger::create(random);
    auto proof2 = relay::prove(node, pub, c2.challenge_key(), c2.challenge());
    WARREN_FUZZ_CHECK(proof2);
    auto bad2 = *proof2;
    bad2[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    WARREN_FUZZ_CHECK(c2.verify(pub, bad2).code() == EACCES);
    auto who = c.verify(pub, *proof);
    WARREN_FUZZ_CHECK(who && *who == pub);
  }
}

// --- 3: names ---------------------------------------------------------------------------------

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

PktPtr parse_dns(ConstBytes b) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, b.data(), b.size()) != LDNS_STATUS_OK)
    return nullptr;
  return PktPtr(p);
}

// The table every query input is answered from: the base roster's nodes (node-1..node-3).
const NameTable& names_table() {
  static const NameTable t = [] {
    auto made = NameTable::create(base_roster());
    WARREN_FUZZ_CHECK(made);
    return *made;
  }();
  return t;
}

bool under_mesh_domain(const ldns_pkt* q) {
  static const std::unique_ptr<ldns_rdf, void (*)(ldns_rdf*)> apex(
      ldns_dname_new_frm_str("warren."), ldns_rdf_deep_free);
  const ldns_rr_list* qs = ldns_pkt_question(q);
  if (!qs || ldns_rr_list_rr_count(qs) != 1)
    return false;
  const ldns_rdf* name = ldns_rr_owner(ldns_rr_list_rr(qs, 0));
  return ldns_dname_compare(name, apex.get()) == 0 || ldns_dname_is_subdomain(name, apex.get());
}

void check_response(ConstBytes query, const DnsResponse& wire, DnsTransport transport) {
  auto r = parse_dns(wire);
  WARREN_FUZZ_CHECK(r);
  WARREN_FUZZ_CHECK(ldns_pkt_qr(r.get()));
  WARREN_FUZZ_CHECK(ldns_pkt_id(r.get()) == LDNS_ID_WIRE(query.data()));
  WARREN_FUZZ_CHECK(ldns_pkt_qdcount(r.get()) <= 1);
  if (transport == DnsTransport::kUdp) {
    auto q = parse_dns(query);
    const std::size_t limit = q && ldns_pkt_edns(q.get()) ? kUdpPayloadSize : kClassicUdpSize;
    WARREN_FUZZ_CHECK(wire.size() <= limit);
  }
}

// The forwarder never crashes on any bytes, and relays only what matches: `d` as a client's query
// goes out byte for byte but for the id, which is fresh; `d` as the upstream's datagram (with
// the id rewritten to the outstanding one) is delivered exactly when it is a response (QR) to the
// same question, then with the client's id and within the client's UDP limit; and it never
// is from another sender. error_response answers every query-shaped input with its id.
class CountingRandom : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out)
      b = static_cast<std::uint8_t>(++n_ * 151);
  }

 private:
  unsigned n_ = 0;
};

void fuzz_forwarder(ConstBytes d) {
  auto question = dns::parse_question(d);
  if (question) {
    WARREN_FUZZ_CHECK(!question->name.empty() && question->name.back() == '.');
    WARREN_FUZZ_CHECK(question->udp_limit >= dns::kClassicUdpSize &&
                      question->udp_limit <= dns::kUdpPayloadSize);
  }
  if (d.size() >= 12 && (d[2] & 0x80) == 0) {
    auto e = dns::error_response(d, dns::Rcode::kServFail);
    WARREN_FUZZ_CHECK(e);
    auto p = parse_dns(*e);
    WARREN_FUZZ_CHECK(p && ldns_pkt_qr(p.get()) && ldns_pkt_id(p.get()) == (d[0] << 8 | d[1]));
  }
  CountingRandom random;
  const net::Endpoint upstream = *net::Endpoint::parse("192.0.2.53:53");
  dns::Forwarder f({upstream}, {}, random);
  const dns::Client client{*net::Endpoint::parse("10.8.0.2:4000"), 0, dns::Transport::kUdp};
  auto up = f.forward(d, client, MonoTime{});
  WARREN_FUZZ_CHECK(static_cast<bool>(up) == static_cast<bool>(question));
  // Any bytes as an upstream datagram when nothing matching is outstanding.
  dns::Forwarder empty({upstream}, {}, random);
  WARREN_FUZZ_CHECK(!empty.on_response(upstream, d));
  if (!up)
    return;
  WARREN_FUZZ_CHECK(up->upstream == upstream && up->datagram.size() == d.size() &&
                    std::equal(d.begin() + 2, d.end(), up->datagram.begin() + 2));
  std::vector<std::uint8_t> answer(d.begin(), d.end());
  answer[0] = up->datagram[0];
  answer[1] = up->datagram[1];
  WARREN_FUZZ_CHECK(!f.on_response(*net::Endpoint::parse("192.0.2.54:53"), answer));
  auto back = f.on_response(upstream, answer);
  const bool is_response = (d[2] & 0x80) != 0;
  WARREN_FUZZ_CHECK(static_cast<bool>(back) == is_response);
  if (back) {
    WARREN_FUZZ_CHECK(back->client == client && back->response.size() >= 12);
    WARREN_FUZZ_CHECK(back->response[0] == d[0] && back->response[1] == d[1]);
    WARREN_FUZZ_CHECK(back->response.size() <= question->udp_limit);
    WARREN_FUZZ_CHECK(f.outstanding() == 0);
  } else {
    WARREN_FUZZ_CHECK(f.outstanding() == 1);
  }
}

void fuzz_names(const std::uint8_t* data, std::size_t size) {
  const NameTable& t = names_table();
  const ConstBytes d(data, size);

  // 1. The input as a query.
  auto udp = t.answer(d, DnsTransport::kUdp);
  const bool not_a_query = size < 12 || (data[2] & 0x80) != 0;
  if (!udp) {
    WARREN_FUZZ_CHECK(not_a_query && udp.code() == EBADMSG && !udp.error().message.empty());
  } else {
    WARREN_FUZZ_CHECK(!not_a_query);
    auto tcp = t.answer(d, DnsTransport::kTcp);
    WARREN_FUZZ_CHECK(tcp && tcp->index() == udp->index());
    auto again = t.answer(d, DnsTransport::kUdp);
    WARREN_FUZZ_CHECK(again && *again == *udp);
    if (std::holds_alternative<Forward>(*udp)) {
      auto q = parse_dns(d);
      WARREN_FUZZ_CHECK(q && !under_mesh_domain(q.get()));
    } else {
      const auto& u = std::get<DnsResponse>(*udp);
      const auto& c = std::get<DnsResponse>(*tcp);
      check_response(d, u, DnsTransport::kUdp);
      check_response(d, c, DnsTransport::kTcp);
      auto ru = parse_dns(u);
      if (!ldns_pkt_tc(ru.get()))
        WARREN_FUZZ_CHECK(u == c);
    }
  }

  // 2. The same bytes through the server's tunnel resolver (dns/forwarder.h): as a client's
  //    query and as an upstream's answer to it.
  fuzz_forwarder(d);

  // 3. The input as a name label (and query flags) in a well-formed query.
  fuzz::Cursor in(data, size);
  const std::uint8_t flags = in.u8();
  const ConstBytes raw = in.take(in.u8() % 64);
  std::string label(reinterpret_cast<const char*>(raw.data()), raw.size());
  if (label.empty())
    label = "node-1";
  // Build the name from wire bytes (length-prefixed label + "warren"), so any byte can appear.
  std::vector<std::uint8_t> name;
  name.push_back(static_cast<std::uint8_t>(label.size()));
  name.insert(name.end(), label.begin(), label.end());
  const std::string domain = "warren";
  name.push_back(static_cast<std::uint8_t>(domain.size()));
  name.insert(name.end(), domain.begin(), domain.end());
  name.push_back(0);
  ldns_rdf* dname = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, name.size(), name.data());
  WARREN_FUZZ_CHECK(dname);
  const ldns_rr_type type = (flags & 1) ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A;
  PktPtr q(ldns_pkt_query_new(dname, type, LDNS_RR_CLASS_IN, LDNS_RD));
  WARREN_FUZZ_CHECK(q);
  if (flags & 2)
    ldns_pkt_set_edns_udp_size(q.get(), static_cast<std::uint16_t>(512 + flags));
  std::uint8_t* wire = nullptr;
  std::size_t wire_size = 0;
  WARREN_FUZZ_CHECK(ldns_pkt2wire(&wire, q.get(), &wire_size) == LDNS_STATUS_OK);
  const std::vector<std::uint8_t> qbytes(wire, wire + wire_size);
  std::free(wire);
  auto a = t.answer(qbytes);
  WARREN_FUZZ_CHECK(a && std::holds_alternative<DnsResponse>(*a));
  check_response(qbytes, std::get<DnsResponse>(*a), DnsTransport::kUdp);
  auto r = parse_dns(std::get<DnsResponse>(*a));
  WARREN_FUZZ_CHECK(r && ldns_pkt_aa(r.get()));
  std::string lower = label;
  for (auto& ch : lower)
    ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
  const NodeEntry* node = nullptr;
  for (const auto& [k, e] : base_roster().nodes())
    if (e.name == lower)
      node = &e;
  if (!node) {
    WARREN_FUZZ_CHECK(ldns_pkt_get_rcode(r.get()) == LDNS_RCODE_NXDOMAIN);
    WARREN_FUZZ_CHECK(ldns_pkt_ancount(r.get()) == 0);
  } else {
    WARREN_FUZZ_CHECK(ldns_pkt_get_rcode(r.get()) == LDNS_RCODE_NOERROR);
    WARREN_FUZZ_CHECK(ldns_pkt_ancount(r.get()) == 1);
    const ldns_rdf* got = ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(r.get()), 0), 0);
    const net::IpAddress& want = (flags & 1) ? node->v6 : node->v4;
    WARREN_FUZZ_CHECK(got && ldns_rdf_size(got) == (want.is_v4() ? 4u : 16u) &&
                      std::memcmp(ldns_rdf_data(got), want.data(), ldns_rdf_size(got)) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  switch (data[0] % 4) {
    case 0:
      fuzz_stun(data + 1, size - 1);
      break;
    case 1:
      fuzz_roster(data + 1, size - 1);
      break;
    case 2:
      fuzz_relay(data + 1, size - 1);
      break;
    default:
      fuzz_names(data + 1, size - 1);
  }
  return 0;
}
