// The relay's switchboard (see relay_switchboard.h).

#include "mesh/relay_switchboard.h"

#include <algorithm>
#include <string>

namespace warren::mesh::relay {

namespace {
constexpr Duration kRateErrorInterval = std::chrono::seconds(1);
}  // namespace

bool Switchboard::Bucket::take(double amount, std::uint64_t rate, MonoTime now) {
  if (rate == 0)
    return true;
  const double cap = static_cast<double>(rate);  // a burst of one second's worth
  if (last == MonoTime{}) {
    tokens = cap;
  } else if (now > last) {
    tokens = std::min(cap, tokens + std::chrono::duration<double>(now - last).count() * cap);
  }
  last = now;
  if (tokens < amount)
    return false;
  tokens -= amount;
  return true;
}

Switchboard::Switchboard(SwitchboardOptions options, Authorizer authorized, RandomSource& random)
    : options_(options), authorized_(std::move(authorized)), random_(random) {}

void Switchboard::mark(ConnId id) {
  if (std::find(ready_.begin(), ready_.end(), id) == ready_.end())
    ready_.push_back(id);
}

bool Switchboard::queue(ConnId id, Conn& c, std::vector<std::uint8_t> bytes, bool must) {
  if (c.closing)
    return false;
  // Errors and control answers (`must`) may exceed the bound by kControlSlack: they are small
  // and at most one is queued per frame received. A node that fills even that (pings and never
  // reads) is closed: its queue must not grow without bound.
  if (must && c.queued + bytes.size() > options_.max_queued_bytes + kControlSlack) {
    ++counters_.overflow_closed;
    c.closing = true;
    mark(id);
    if (c.key) {
      by_key_.erase(*c.key);
      c.key.reset();
    }
    return false;
  }
  if (!must && c.queued + bytes.size() > options_.max_queued_bytes) {
    ++counters_.drop_queue_full;
    return false;
  }
  c.queued += bytes.size();
  c.out.push_back(std::move(bytes));
  mark(id);
  return true;
}

void Switchboard::fail(ConnId id, Conn& c, ErrorCode code, std::string_view text) {
  queue(id, c, encode_error(code, text), true);
  c.closing = true;
  mark(id);
  if (c.key) {
    by_key_.erase(*c.key);
    c.key.reset();
  }
}

void Switchboard::open(ConnId id, MonoTime now) {
  Conn& c = conns_[id];
  c.opened = now;
  c.challenger = Challenger::create(random_);
  queue(id, c, c.challenger->frame(), true);
}

void Switchboard::open_proven(ConnId id, const crypto::PublicKey& key, MonoTime now) {
  Conn& c = conns_[id];
  c.opened = now;
  admit(id, c, key);
}

void Switchboard::close(ConnId id) {
  auto it = conns_.find(id);
  if (it == conns_.end())
    return;
  if (it->second.key) {
    auto k = by_key_.find(*it->second.key);
    if (k != by_key_.end() && k->second == id)
      by_key_.erase(k);
  }
  conns_.erase(it);
  std::erase(ready_, id);
}

void Switchboard::protocol_error(ConnId id, std::string_view what) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.closing)
    return;
  ++counters_.protocol_errors;
  fail(id, it->second, ErrorCode::kProtocol, what);
}

void Switchboard::frame(ConnId id, const Frame& f, MonoTime now) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.closing)
    return;
  Conn& c = it->second;
  switch (f.type) {
    case FrameType::kAuth:
      authenticate(id, c, f);
      return;
    case FrameType::kSend:
      if (!c.key) {
        ++counters_.drop_auth_required;
        queue(id, c, encode_error(ErrorCode::kAuthRequired, "authenticate first"), true);
        return;
      }
      forward(id, c, f, now);
      return;
    case FrameType::kPing:
      queue(id, c, encode_ping(FrameType::kPong, f.nonce), true);
      return;
    case FrameType::kPong:
    case FrameType::kKeepalive:
      return;
    case FrameType::kError:
      // The node tells us why it gives up; nothing to answer. It closes the stream itself.
      return;
    case FrameType::kUdpAuth:  // answered by the UDP glue before a connection exists
    case FrameType::kChallenge:
    case FrameType::kAuthOk:
    case FrameType::kRecv:
      ++counters_.protocol_errors;
      fail(id, c, ErrorCode::kProtocol, "a relay-to-node frame sent by a node");
      return;
  }
}

void Switchboard::authenticate(ConnId id, Conn& c, const Frame& f) {
  if (c.key || !c.challenger) {
    ++counters_.protocol_errors;
    fail(id, c, ErrorCode::kProtocol, "authenticated already");
    return;
  }
  auto key = c.challenger->verify(f.key, f.challenge);
  c.challenger.reset();  // one answer per connection
  if (!key) {
    ++counters_.auth_failed;
    fail(id, c, ErrorCode::kAuthFailed, "the proof does not match the key");
    return;
  }
  admit(id, c, *key);
}

void Switchboard::admit(ConnId id, Conn& c, const crypto::PublicKey& proven) {
  const crypto::PublicKey* key = &proven;
  if (!authorized_(*key)) {
    ++counters_.auth_failed;
    fail(id, c, ErrorCode::kNotEnrolled, "this key is not an enrolled node (or it was revoked)");
    return;
  }
  // Roaming: the newest connection that proved the key wins; the old one is closed.
  if (auto old = by_key_.find(*key); old != by_key_.end() && old->second != id) {
    const ConnId prev = old->second;
    by_key_.erase(old);
    if (auto p = conns_.find(prev); p != conns_.end()) {
      p->second.key.reset();
      ++counters_.replaced;
      fail(prev, p->second, ErrorCode::kShuttingDown,
           "replaced by a newer connection with this key");
    }
  }
  c.key = *key;
  by_key_[*key] = id;
  ++counters_.auth_ok;
  queue(id, c, encode_simple(FrameType::kAuthOk), true);
}

void Switchboard::forward(ConnId id, Conn& c, const Frame& f, MonoTime now) {
  Rate& rate = rates_[*c.key];
  const bool within =
      rate.frames.take(1, options_.rate_frames, now) &&
      rate.bytes.take(static_cast<double>(f.datagram.size()), options_.rate_bytes, now);
  if (!within) {
    ++counters_.drop_rate_limited;
    if (!c.rate_error_sent || now - c.last_rate_error >= kRateErrorInterval) {
      c.rate_error_sent = true;
      c.last_rate_error = now;
      queue(id, c, encode_error(ErrorCode::kRateLimited, "over the relay's rate; dropping"));
    }
    return;
  }
  auto dst = by_key_.find(f.key);
  if (dst == by_key_.end()) {
    ++counters_.drop_unknown_destination;
    queue(id, c, encode_error(ErrorCode::kUnknownDestination, "destination not connected"));
    return;
  }
  Conn& to = conns_.at(dst->second);
  std::vector<std::uint8_t> out(kDataHeaderSize + f.datagram.size());
  if (!write_data_header(std::span<std::uint8_t, kDataHeaderSize>(out.data(), kDataHeaderSize),
                         FrameType::kRecv, *c.key, f.datagram.size()))
    return;  // cannot happen: the decoder bounds the datagram
  std::copy(f.datagram.begin(), f.datagram.end(), out.begin() + kDataHeaderSize);
  if (queue(dst->second, to, std::move(out))) {
    ++counters_.forwarded_frames;
    counters_.forwarded_bytes += f.datagram.size();
  }
}

void Switchboard::expire(MonoTime now) {
  for (auto& [id, c] : conns_) {
    if (!c.key && !c.closing && now - c.opened >= options_.auth_timeout) {
      ++counters_.auth_timeouts;
      fail(id, c, ErrorCode::kAuthRequired, "authentication timed out");
    }
  }
}

void Switchboard::revalidate() {
  std::vector<ConnId> lost;
  for (const auto& [key, id] : by_key_)
    if (!authorized_(key))
      lost.push_back(id);
  std::erase_if(rates_, [&](const auto& r) { return !authorized_(r.first); });
  for (ConnId id : lost) {
    ++counters_.revoked;
    fail(id, conns_.at(id), ErrorCode::kNotEnrolled, "this node was revoked or disabled");
  }
}

std::vector<ConnId> Switchboard::take_ready() {
  std::vector<ConnId> r;
  r.swap(ready_);
  return r;
}

std::deque<std::vector<std::uint8_t>>* Switchboard::output(ConnId id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : &it->second.out;
}

void Switchboard::written(ConnId id, std::size_t bytes) {
  auto it = conns_.find(id);
  if (it != conns_.end())
    it->second.queued -= std::min(bytes, it->second.queued);
}

bool Switchboard::closing(ConnId id) const {
  auto it = conns_.find(id);
  return it != conns_.end() && it->second.closing;
}

std::optional<crypto::PublicKey> Switchboard::node(ConnId id) const {
  auto it = conns_.find(id);
  return it == conns_.end() ? std::nullopt : it->second.key;
}

MonoTime Switchboard::next_deadline() const {
  MonoTime next = kNoDeadline;
  for (const auto& [id, c] : conns_)
    if (!c.key && !c.closing)
      next = std::min(next, c.opened + options_.auth_timeout);
  return next;
}

}  // namespace warren::mesh::relay
