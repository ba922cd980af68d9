// The mesh roster: the coordinator's versioned node list, its deltas and their wire codec.
//
//   upsert/revoke/remove ──► nodes_ + meta_ (created/changed version) + by_change_ (version ->
//                            key, for diff) + tombstones_ (removed)
//   diff(from)           ──► by_change_ after from: created > from: added, else changed;
//                            tombstone created <= from < removed: removed
//   apply(delta)         ──► check every entry against nodes_ and the name/address indexes,
//                            changing nothing ──► commit (cannot fail)
//
// apply() checks the whole delta before it touches anything, so a refused delta leaves the
// roster exactly as it was ("nothing half-applied") without undo code; the name and IPv4
// indexes make the checks O(delta * log n), so a 1-node change costs a node microseconds even
// in a 10,000-node mesh (roster_test.cc's size test measures it). A full snapshot is built
// aside and swapped in.

#include "mesh/roster.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <set>

namespace warren::mesh {
namespace {

std::string key_text(const crypto::PublicKey& key) {
  return key.to_base64();  // public keys are what `wg show` prints; never a private key here
}

// A name from the wire, made safe for an error message (printable ASCII, bounded).
std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < kMaxNameLength + 1; ++i)
    out += (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  return out;
}

Error invalid(const NodeEntry& e, const std::string& what) {
  return Error(EINVAL, "roster entry " + key_text(e.key) + ": " + what);
}

bool valid_endpoint(const net::Endpoint& e) {
  return e.port != 0 && !e.address.is_unspecified();
}

Error name_taken(const NodeEntry& e, const crypto::PublicKey& owner) {
  return Error(EEXIST, "roster entry " + key_text(e.key) + ": name '" + e.name +
                           "' is already the name of " + key_text(owner));
}

Error address_taken(const NodeEntry& e, const crypto::PublicKey& owner) {
  return Error(EEXIST, "roster entry " + key_text(e.key) + ": IPv4 address " + e.v4.to_string() +
                           " is already the address of " + key_text(owner));
}

// --- wire helpers -------------------------------------------------------------------------

Error malformed(const std::string& what) {
  return Error(EBADMSG, "malformed roster delta: " + what);
}

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void bytes(const std::uint8_t* p, std::size_t n) { out_.insert(out_.end(), p, p + n); }

 private:
  std::vector<std::uint8_t>& out_;
};

class Reader {
 public:
  explicit Reader(ConstBytes in) : in_(in) {}
  std::size_t left() const { return in_.size() - pos_; }
  std::size_t pos() const { return pos_; }
  // Every read checks the bytes left first; callers test `ok()` once per entry.
  bool need(std::size_t n) {
    if (n > left())
      failed_ = true;
    return !failed_;
  }
  std::uint8_t u8() { return need(1) ? in_[pos_++] : 0; }
  std::uint16_t u16() {
    if (!need(2))
      return 0;
    pos_ += 2;
    return load_be16(in_.data() + pos_ - 2);
  }
  std::uint32_t u32() {
    if (!need(4))
      return 0;
    pos_ += 4;
    return load_be32(in_.data() + pos_ - 4);
  }
  std::uint64_t u64() {
    if (!need(8))
      return 0;
    pos_ += 8;
    return load_be64(in_.data() + pos_ - 8);
  }
  const std::uint8_t* take(std::size_t n) {
    if (!need(n))
      return nullptr;
    pos_ += n;
    return in_.data() + pos_ - n;
  }
  bool ok() const { return !failed_; }

 private:
  ConstBytes in_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

// Smallest encodings, for bounding counts by the bytes left before reserving anything.
constexpr std::size_t kMinEntrySize = 32 + 1 + 1 + 1 + 2 + 4 + 16 + 1 + 1;  // name of 1 byte
constexpr std::size_t kKeySize = crypto::kKeySize;

void write_endpoint(Writer& w, const net::Endpoint& e) {
  w.u8(e.address.is_v4() ? 4 : 6);
  w.bytes(e.address.data(), e.address.size());
  w.u16(e.port);
}

Result<net::Endpoint> read_endpoint(Reader& r, const char* what) {
  const std::uint8_t family = r.u8();
  if (!r.ok())
    return malformed(std::string("truncated ") + what);
  if (family != 4 && family != 6)
    return malformed(std::string(what) + " has address family " + std::to_string(family) +
                     " (want 4 or 6)");
  const std::size_t len = family == 4 ? 4 : 16;
  const std::uint8_t* p = r.take(len);
  const std::uint16_t port = r.u16();
  if (!r.ok())
    return malformed(std::string("truncated ") + what);
  if (port == 0)
    return malformed(std::string(what) + " has port 0");
  return net::Endpoint{*net::IpAddress::from_bytes(p, len), port};  // len is 4 or 16
}

void write_entry(Writer& w, const NodeEntry& e) {
  assert(!e.name.empty() && e.name.size() <= kMaxNameLength);
  assert(e.local_endpoints.size() <= kMaxLocalEndpoints && e.v4_index <= 0xFFFF);
  w.bytes(e.key.bytes.data(), kKeySize);
  w.u8(static_cast<std::uint8_t>(e.name.size()));
  w.bytes(reinterpret_cast<const std::uint8_t*>(e.name.data()), e.name.size());
  w.u8(static_cast<std::uint8_t>(e.state));
  w.u16(static_cast<std::uint16_t>(e.v4_index));
  // v4/v6 are written as 4 and 16 bytes whatever their family; apply() checks the family by
  // comparing with the derivation, and decode reads them back as IPv4 and IPv6.
  std::array<std::uint8_t, 16> v6{};
  std::array<std::uint8_t, 4> v4{};
  std::copy_n(e.v4.data(), e.v4.is_v4() ? 4 : 0, v4.begin());
  std::copy_n(e.v6.data(), e.v6.is_v6() ? 16 : 0, v6.begin());
  w.bytes(v4.data(), v4.size());
  w.bytes(v6.data(), v6.size());
  w.u8(e.reflexive ? 1 : 0);
  if (e.reflexive)
    write_endpoint(w, *e.reflexive);
  w.u8(static_cast<std::uint8_t>(e.local_endpoints.size()));
  for (const auto& ep : e.local_endpoints)
    write_endpoint(w, ep);
}

Result<NodeEntry> read_entry(Reader& r) {
  NodeEntry e;
  const std::uint8_t* key = r.take(kKeySize);
  const std::size_t name_len = r.u8();
  if (!r.ok())
    return malformed("truncated entry at byte " + std::to_string(r.pos()));
  std::copy_n(key, kKeySize, e.key.bytes.begin());
  if (name_len == 0 || name_len > kMaxNameLength) {
    return malformed("entry " + key_text(e.key) + " has a name of " + std::to_string(name_len) +
                     " bytes (want 1.." + std::to_string(kMaxNameLength) + ")");
  }
  const std::uint8_t* name = r.take(name_len);
  const std::uint8_t state = r.u8();
  e.v4_index = r.u16();
  const std::uint8_t* v4 = r.take(4);
  const std::uint8_t* v6 = r.take(16);
  const std::uint8_t flags = r.u8();
  if (!r.ok())
    return malformed("truncated entry " + key_text(e.key));
  e.name.assign(reinterpret_cast<const char*>(name), name_len);
  if (state > static_cast<std::uint8_t>(NodeState::kRevoked))
    return malformed("entry " + key_text(e.key) + " has unknown state " + std::to_string(state));
  e.state = static_cast<NodeState>(state);
  e.v4 = *net::IpAddress::from_bytes(v4, 4);
  e.v6 = *net::IpAddress::from_bytes(v6, 16);
  if ((flags & ~1u) != 0)
    return malformed("entry " + key_text(e.key) + " has unknown flags " + std::to_string(flags));
  if (flags & 1) {
    auto ep = read_endpoint(r, "reflexive endpoint");
    if (!ep)
      return std::move(ep).error();
    e.reflexive = *ep;
  }
  const std::size_t n = r.u8();
  if (!r.ok())
    return malformed("truncated entry " + key_text(e.key));
  if (n > kMaxLocalEndpoints) {
    return malformed("entry " + key_text(e.key) + " has " + std::to_string(n) +
                     " local endpoints (at most " + std::to_string(kMaxLocalEndpoints) + ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto ep = read_endpoint(r, "local endpoint");
    if (!ep)
      return std::move(ep).error();
    e.local_endpoints.push_back(*ep);
  }
  return e;
}

Result<std::size_t> read_count(Reader& r, std::size_t min_size, const char* what) {
  const std::uint32_t n = r.u32();
  if (!r.ok())
    return malformed(std::string("truncated before the count of ") + what);
  if (n > kMaxNodes) {
    return malformed(std::to_string(n) + " " + what + " (at most " + std::to_string(kMaxNodes) +
                     ")");
  }
  // No allocation larger than the input could justify.
  if (n > r.left() / min_size) {
    return malformed(std::to_string(n) + " " + what + " cannot fit in the " +
                     std::to_string(r.left()) + " bytes left");
  }
  return static_cast<std::size_t>(n);
}

}  // namespace

bool valid_node_name(std::string_view n) {
  if (n.empty() || n.size() > kMaxNameLength || n.front() == '-' || n.back() == '-')
    return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return true;
}

NodeEntry make_entry(const AddressPlan& plan, std::string name, const crypto::PublicKey& key,
                     std::uint32_t v4_index) {
  NodeEntry e;
  e.name = std::move(name);
  e.key = key;
  e.v4_index = v4_index;
  const std::string id = key.to_base64();
  e.v4 = plan.v4(id, v4_index);
  e.v6 = plan.v6(id);
  return e;
}

Status validate_entry(const AddressPlan& plan, const NodeEntry& e) {
  if (e.key.is_zero())
    return invalid(e, "the public key is all zero");
  if (!valid_node_name(e.name)) {
    return invalid(e, "name '" + printable(e.name) +
                          "' is not a DNS label (1..63 of a-z, 0-9, '-', no '-' at either end)");
  }
  if (e.state != NodeState::kActive && e.state != NodeState::kRevoked)
    return invalid(e, "unknown state " + std::to_string(static_cast<int>(e.state)));
  if (e.v4_index > kMaxV4Index) {
    return invalid(e, "IPv4 collision index " + std::to_string(e.v4_index) + " is above " +
                          std::to_string(kMaxV4Index));
  }
  const std::string id = e.key.to_base64();
  const net::IpAddress want4 = plan.v4(id, e.v4_index);
  if (e.v4 != want4) {
    return invalid(e, "IPv4 address " + e.v4.to_string() + " does not match the derivation " +
                          want4.to_string() + " (index " + std::to_string(e.v4_index) +
                          ", prefix " + plan.v4_prefix().to_string() + ")");
  }
  const net::IpAddress want6 = plan.v6(id);
  if (e.v6 != want6) {
    return invalid(e, "IPv6 address " + e.v6.to_string() + " does not match the derivation " +
                          want6.to_string() + " (prefix " + plan.v6_prefix().to_string() + ")");
  }
  if (e.local_endpoints.size() > kMaxLocalEndpoints) {
    return invalid(e, std::to_string(e.local_endpoints.size()) + " local endpoints (at most " +
                          std::to_string(kMaxLocalEndpoints) + ")");
  }
  for (const auto& ep : e.local_endpoints) {
    if (!valid_endpoint(ep))
      return invalid(e, "local endpoint " + ep.to_string() + " has port 0 or no address");
  }
  if (e.reflexive && !valid_endpoint(*e.reflexive))
    return invalid(e,
                   "reflexive endpoint " + e.reflexive->to_string() + " has port 0 or no address");
  return ok();
}

const NodeEntry* Roster::find(const crypto::PublicKey& key) const {
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : &it->second;
}

void Roster::index_add(const NodeEntry& e) {
  names_.emplace(e.name, e.key);
  v4s_.emplace(e.v4, e.key);
}

void Roster::index_remove(const NodeEntry& e) {
  names_.erase(e.name);
  v4s_.erase(e.v4);
}

void Roster::touch(const crypto::PublicKey& key, std::uint64_t version, bool created) {
  auto [it, fresh] = meta_.try_emplace(key);
  if (!fresh)
    by_change_.erase({it->second.changed, key});
  if (created)
    it->second.created = version;
  it->second.changed = version;
  by_change_.emplace(version, key);
}

void Roster::forget_tombstone(const crypto::PublicKey& key) {
  // A key removed earlier and now back: a holder of a version from before that removal may
  // still have it, and one from after does not; one tombstone cannot say both, so older holders
  // take a snapshot. (Rare: a removed node enrolling again with the same key.)
  for (auto t = tombstones_.begin(); t != tombstones_.end(); ++t) {
    if (t->key == key) {
      horizon_ = std::max(horizon_, t->removed);
      tombstones_.erase(t);
      return;
    }
  }
}

void Roster::add_tombstone(const crypto::PublicKey& key, std::uint64_t removed) {
  auto m = meta_.find(key);
  tombstones_.push_back({key, m->second.created, removed});
  by_change_.erase({m->second.changed, key});
  meta_.erase(m);
  if (tombstones_.size() > kMaxTombstones) {
    // Forgetting this removal means a holder of a version before it can no longer be told.
    horizon_ = std::max(horizon_, tombstones_.front().removed);
    tombstones_.erase(tombstones_.begin());
  }
}

Status Roster::upsert(NodeEntry entry) {
  if (auto s = validate_entry(plan_, entry); !s)
    return s;
  auto it = nodes_.find(entry.key);
  if (it != nodes_.end() && it->second == entry)
    return ok();  // nothing changed: no version step, nothing to send
  if (it == nodes_.end() && nodes_.size() >= kMaxNodes)
    return Error(E2BIG, "roster is full (" + std::to_string(kMaxNodes) + " nodes)");
  if (auto o = names_.find(entry.name); o != names_.end() && o->second != entry.key)
    return name_taken(entry, o->second);
  if (auto o = v4s_.find(entry.v4); o != v4s_.end() && o->second != entry.key)
    return address_taken(entry, o->second);

  ++version_;
  if (it != nodes_.end()) {
    index_remove(it->second);
    it->second = std::move(entry);
    index_add(it->second);
    touch(it->first, version_, false);
  } else {
    forget_tombstone(entry.key);
    touch(entry.key, version_, true);
    auto [ins, fresh] = nodes_.emplace(entry.key, std::move(entry));
    index_add(ins->second);
  }
  return ok();
}

Status Roster::revoke(const crypto::PublicKey& key) {
  const NodeEntry* e = find(key);
  if (e == nullptr)
    return Error(ENOENT, "roster has no node " + key_text(key) + " to revoke");
  NodeEntry r = *e;
  r.state = NodeState::kRevoked;
  r.local_endpoints.clear();
  r.reflexive.reset();
  return upsert(std::move(r));
}

Status Roster::remove(const crypto::PublicKey& key) {
  auto it = nodes_.find(key);
  if (it == nodes_.end())
    return Error(ENOENT, "roster has no node " + key_text(key) + " to remove");
  index_remove(it->second);
  nodes_.erase(it);
  ++version_;
  add_tombstone(key, version_);
  return ok();
}

Result<RosterDelta> Roster::diff(std::uint64_t from) const {
  RosterDelta d;
  d.to_version = version_;
  if (from == 0) {
    d.full = true;
    d.added.reserve(nodes_.size());
    for (const auto& [key, e] : nodes_)
      d.added.push_back(e);
    return d;
  }
  if (from > version_) {
    return Error(ESTALE, "roster version " + std::to_string(from) + " is newer than " +
                             std::to_string(version_) + ": take a full snapshot");
  }
  if (from < horizon_) {
    return Error(ESTALE, "roster version " + std::to_string(from) +
                             " is older than the kept history (from " + std::to_string(horizon_) +
                             "): take a full snapshot");
  }
  d.from_version = from;
  // Only what changed after `from`, found through the change index: O(changes * log n), so
  // answering a node one step behind costs the same in a mesh of 10 or 10,000 nodes.
  for (auto it = by_change_.lower_bound({from + 1, crypto::PublicKey{}}); it != by_change_.end();
       ++it) {
    const NodeEntry& e = nodes_.at(it->second);
    (meta_.at(it->second).created > from ? d.added : d.changed).push_back(e);
  }
  auto by_key = [](const NodeEntry& a, const NodeEntry& b) { return a.key < b.key; };
  std::sort(d.added.begin(), d.added.end(), by_key);
  std::sort(d.changed.begin(), d.changed.end(), by_key);
  for (const auto& t : tombstones_) {
    if (t.removed > from && t.created <= from)
      d.removed.push_back(t.key);
  }
  std::sort(d.removed.begin(), d.removed.end());
  return d;
}

Status Roster::apply(const RosterDelta& d) {
  if (d.added.size() > kMaxNodes || d.changed.size() > kMaxNodes || d.removed.size() > kMaxNodes)
    return Error(E2BIG, "roster delta has more than " + std::to_string(kMaxNodes) + " entries");
  if (d.full)
    return apply_full(d);
  if (d.from_version != version_) {
    return Error(ESTALE, "roster delta starts at version " + std::to_string(d.from_version) +
                             " but this roster is at version " + std::to_string(version_) +
                             ": ask for a full snapshot");
  }
  if (d.to_version == d.from_version && d.empty())
    return ok();  // diff() of an up-to-date holder: nothing to do
  if (d.to_version <= d.from_version) {
    return Error(EINVAL, "roster delta goes from version " + std::to_string(d.from_version) +
                             " to " + std::to_string(d.to_version) + " (must increase)");
  }

  // Check everything first, changing nothing; then commit, which cannot fail. The checks cost
  // O(delta * log n): a 1-node delta is cheap however large the roster.
  std::set<crypto::PublicKey> seen;  // a key may appear once across removed, changed, added
  for (const auto& key : d.removed) {
    if (!seen.insert(key).second)
      return Error(EEXIST, "roster delta lists " + key_text(key) + " twice");
    if (!nodes_.contains(key))
      return Error(ENOENT, "roster delta removes unknown node " + key_text(key));
  }
  for (const auto& e : d.changed) {
    if (!seen.insert(e.key).second)
      return Error(EEXIST, "roster delta lists " + key_text(e.key) + " twice");
    if (!nodes_.contains(e.key))
      return Error(ENOENT, "roster delta changes unknown node " + key_text(e.key));
    if (auto s = validate_entry(plan_, e); !s)
      return s;
  }
  for (const auto& e : d.added) {
    if (!seen.insert(e.key).second)
      return Error(EEXIST, "roster delta lists " + key_text(e.key) + " twice");
    if (auto s = validate_entry(plan_, e); !s)
      return s;
    if (nodes_.contains(e.key))
      return Error(EEXIST, "roster delta adds " + key_text(e.key) + ", which is already present");
  }
  if (nodes_.size() - d.removed.size() + d.added.size() > kMaxNodes) {
    return Error(E2BIG, "roster would hold more than " + std::to_string(kMaxNodes) + " nodes");
  }
  // Names and IPv4 addresses stay unique: a claim conflicts with another claim in the delta, or
  // with a current holder that keeps it (neither removed nor changed; a changed holder that
  // keeps it claims it again in the delta, which the first test catches).
  std::map<std::string_view, const NodeEntry*> names;
  std::map<net::IpAddress, const NodeEntry*> v4s;
  for (const auto* list : {&d.changed, &d.added}) {
    for (const auto& e : *list) {
      if (auto [it, fresh] = names.emplace(e.name, &e); !fresh)
        return name_taken(e, it->second->key);
      if (auto [it, fresh] = v4s.emplace(e.v4, &e); !fresh)
        return address_taken(e, it->second->key);
      if (auto o = names_.find(e.name);
          o != names_.end() && o->second != e.key && !seen.contains(o->second))
        return name_taken(e, o->second);
      if (auto o = v4s_.find(e.v4);
          o != v4s_.end() && o->second != e.key && !seen.contains(o->second))
        return address_taken(e, o->second);
    }
  }

  // Commit. Old names and addresses are released before new ones are claimed, so that two
  // nodes may swap them in one delta.
  const std::uint64_t v = d.to_version;
  for (const auto& key : d.removed) {
    auto it = nodes_.find(key);
    index_remove(it->second);
    nodes_.erase(it);
    add_tombstone(key, v);
  }
  for (const auto& e : d.changed)
    index_remove(nodes_.at(e.key));
  for (const auto& e : d.changed) {
    nodes_.at(e.key) = e;
    index_add(e);
    touch(e.key, v, false);
  }
  for (const auto& e : d.added) {
    forget_tombstone(e.key);
    nodes_.emplace(e.key, e);
    index_add(e);
    touch(e.key, v, true);
  }
  version_ = v;
  return ok();
}

Status Roster::apply_full(const RosterDelta& d) {
  if (!d.changed.empty() || !d.removed.empty() || d.from_version != 0)
    return Error(EINVAL, "a full roster snapshot has only added entries and no from version");
  std::map<crypto::PublicKey, NodeEntry> nodes;
  std::map<std::string, crypto::PublicKey, std::less<>> names;
  std::map<net::IpAddress, crypto::PublicKey> v4s;
  for (const auto& e : d.added) {
    if (auto s = validate_entry(plan_, e); !s)
      return s;
    if (!nodes.emplace(e.key, e).second)
      return Error(EEXIST, "roster snapshot lists " + key_text(e.key) + " twice");
    if (auto [it, fresh] = names.emplace(e.name, e.key); !fresh)
      return name_taken(e, it->second);
    if (auto [it, fresh] = v4s.emplace(e.v4, e.key); !fresh)
      return address_taken(e, it->second);
  }
  // A snapshot is accepted at any version (a coordinator restored from a backup may go back);
  // this copy answers diff() from the snapshot's version on.
  nodes_ = std::move(nodes);
  names_ = std::move(names);
  v4s_ = std::move(v4s);
  meta_.clear();
  by_change_.clear();
  tombstones_.clear();
  for (const auto& [key, e] : nodes_)
    touch(key, d.to_version, true);
  version_ = d.to_version;
  horizon_ = d.to_version;
  return ok();
}

std::vector<std::uint8_t> encode_delta(const RosterDelta& d) {
  assert(d.added.size() <= kMaxNodes && d.changed.size() <= kMaxNodes &&
         d.removed.size() <= kMaxNodes);
  std::vector<std::uint8_t> out;
  out.reserve(kRosterHeaderSize + 12 + (d.added.size() + d.changed.size()) * 96 +
              d.removed.size() * kKeySize);
  Writer w(out);
  w.bytes(kRosterMagic.data(), kRosterMagic.size());
  w.u8(kRosterFormat);
  w.u8(d.full ? 1 : 0);
  w.u64(d.from_version);
  w.u64(d.to_version);
  for (const auto* list : {&d.added, &d.changed}) {
    w.u32(static_cast<std::uint32_t>(list->size()));
    for (const auto& e : *list)
      write_entry(w, e);
  }
  w.u32(static_cast<std::uint32_t>(d.removed.size()));
  for (const auto& k : d.removed)
    w.bytes(k.bytes.data(), kKeySize);
  return out;
}

Result<RosterDelta> decode_delta(ConstBytes bytes) {
  if (bytes.size() < kRosterHeaderSize) {
    return malformed(std::to_string(bytes.size()) + " bytes, shorter than the " +
                     std::to_string(kRosterHeaderSize) + "-byte header");
  }
  if (!std::equal(kRosterMagic.begin(), kRosterMagic.end(), bytes.begin()))
    return malformed("no magic \"WRST\" at bytes 0..3");
  Reader r(bytes.subspan(kRosterMagic.size()));
  const std::uint8_t format = r.u8();
  if (format != kRosterFormat)
    return malformed("format " + std::to_string(format) + " (this build reads format 1)");
  const std::uint8_t flags = r.u8();
  if ((flags & ~1u) != 0)
    return malformed("unknown flags " + std::to_string(flags));
  RosterDelta d;
  d.full = flags & 1;
  d.from_version = r.u64();
  d.to_version = r.u64();
  for (auto* list : {&d.added, &d.changed}) {
    auto n = read_count(r, kMinEntrySize, list == &d.added ? "added entries" : "changed entries");
    if (!n)
      return std::move(n).error();
    list->reserve(*n);
    for (std::size_t i = 0; i < *n; ++i) {
      auto e = read_entry(r);
      if (!e)
        return std::move(e).error();
      list->push_back(std::move(*e));
    }
  }
  auto n = read_count(r, kKeySize, "removed keys");
  if (!n)
    return std::move(n).error();
  d.removed.resize(*n);
  for (auto& k : d.removed)
    std::copy_n(r.take(kKeySize), kKeySize, k.bytes.begin());  // fits: read_count checked
  if (r.left() != 0)
    return malformed(std::to_string(r.left()) + " bytes after the end of the delta");
  return d;
}

}  // namespace warren::mesh
