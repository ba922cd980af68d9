// STUN client transactions. Each server has at most one outstanding transaction; tick() walks
// the (few) servers, so its cost is O(servers) and it allocates only the requests it sends.

#include "mesh/stun_client.h"

#include <algorithm>

namespace warren::mesh {
namespace {

// A dual-stack socket reports IPv4 sources as ::ffff:a.b.c.d; the servers are configured as
// plain IPv4. Compare both unmapped.
net::Endpoint canonical(const net::Endpoint& e) {
  return net::Endpoint{e.address.unmapped(), e.port};
}

}  // namespace

const char* mapping_kind_name(MappingKind k) {
  switch (k) {
    case MappingKind::kUnknown:
      return "unknown";
    case MappingKind::kEndpointIndependent:
      return "endpoint-independent";
    case MappingKind::kEndpointDependent:
      return "endpoint-dependent";
  }
  return "?";
}

const char* stun_state_name(StunServerResult::State s) {
  switch (s) {
    case StunServerResult::State::kPending:
      return "pending";
    case StunServerResult::State::kOk:
      return "ok";
    case StunServerResult::State::kTimedOut:
      return "timeout";
    case StunServerResult::State::kError:
      return "error";
  }
  return "?";
}

StunClient::StunClient(std::vector<net::Endpoint> servers, RandomSource& random,
                       StunClientOptions options)
    : random_(random), options_(options) {
  if (options_.max_sends < 1)
    options_.max_sends = 1;
  for (const net::Endpoint& s : servers) {
    const net::Endpoint c = canonical(s);
    if (!c.valid())
      continue;
    if (std::any_of(results_.begin(), results_.end(),
                    [&](const StunServerResult& r) { return r.server == c; }))
      continue;
    StunServerResult r;
    r.server = c;
    results_.push_back(r);
  }
  transactions_.resize(results_.size());
  next_round_.assign(results_.size(), MonoTime{});  // the first round is due at once
}

void StunClient::tick(Now now, std::vector<Request>& out) {
  for (std::size_t i = 0; i < results_.size(); ++i) {
    Transaction& t = transactions_[i];
    if (!t.active) {
      if (now.mono < next_round_[i])
        continue;
      t.active = true;
      t.id = stun::new_transaction_id(random_);
      t.sends = 0;
      t.first_sent = now.mono;
      t.next_event = now.mono;
    }
    if (now.mono < t.next_event)
      continue;
    if (t.sends >= options_.max_sends) {
      // The wait after the last send is over: RFC 5389 §7.2.1's transaction timeout.
      t.active = false;
      results_[i].state = StunServerResult::State::kTimedOut;
      next_round_[i] = now.mono + options_.retry_after_failure;
      ++counters_.timeouts;
      continue;
    }
    // Waits double after each send: rto, 2·rto, 4·rto, ...
    t.next_event = now.mono + options_.initial_rto * (std::int64_t{1} << t.sends);
    ++t.sends;
    out.push_back(Request{results_[i].server, stun::build_binding_request(t.id)});
    ++counters_.requests_sent;
  }
}

void StunClient::restart() {
  for (std::size_t i = 0; i < results_.size(); ++i) {
    transactions_[i] = Transaction{};
    next_round_[i] = MonoTime{};
    const net::Endpoint server = results_[i].server;
    results_[i] = StunServerResult{};
    results_[i].server = server;
  }
}

MonoTime StunClient::next_deadline() const {
  MonoTime next = kNoDeadline;
  for (std::size_t i = 0; i < results_.size(); ++i)
    next = std::min(next, transactions_[i].active ? transactions_[i].next_event : next_round_[i]);
  return next;
}

StunVerdict StunClient::on_datagram(const net::Endpoint& from, ConstBytes datagram, Now now) {
  auto msg = stun::parse(datagram);
  if (!msg.ok() || (msg->type != stun::kBindingSuccess && msg->type != stun::kBindingError)) {
    ++counters_.malformed;
    return StunVerdict::kMalformed;
  }
  std::size_t i = 0;
  for (; i < results_.size(); ++i) {
    if (transactions_[i].active && transactions_[i].id == msg->transaction_id)
      break;
  }
  if (i == results_.size()) {
    ++counters_.unknown_transaction;
    return StunVerdict::kUnknownTransaction;
  }
  StunServerResult& r = results_[i];
  if (canonical(from) != r.server) {
    // Our id, but not from where we sent it: an on-path observer or a reflection. The real
    // answer may still come, so the transaction stays open.
    ++counters_.wrong_source;
    return StunVerdict::kWrongSource;
  }
  Transaction& t = transactions_[i];
  auto reflexive = stun::parse_binding_success(datagram, t.id);
  if (!reflexive.ok()) {
    if (msg->type == stun::kBindingError) {
      t.active = false;
      r.state = StunServerResult::State::kError;
      next_round_[i] = now.mono + options_.retry_after_failure;
      ++counters_.error_responses;
      return StunVerdict::kErrorResponse;
    }
    ++counters_.malformed;  // a success without a usable address: keep waiting
    return StunVerdict::kMalformed;
  }
  t.active = false;
  r.state = StunServerResult::State::kOk;
  r.reflexive = canonical(*reflexive);
  r.learned_at = now.wall;
  r.rtt = now.mono - t.first_sent;
  next_round_[i] = now.mono + options_.refresh;
  ++counters_.accepted;
  return StunVerdict::kAccepted;
}

MappingKind StunClient::mapping() const {
  const StunServerResult* first = nullptr;
  bool differ = false;
  std::size_t fresh = 0;
  for (const StunServerResult& r : results_) {
    if (r.state != StunServerResult::State::kOk || !r.reflexive)
      continue;
    ++fresh;
    if (first == nullptr)
      first = &r;
    else if (*r.reflexive != *first->reflexive)
      differ = true;
  }
  if (fresh < 2)
    return MappingKind::kUnknown;
  return differ ? MappingKind::kEndpointDependent : MappingKind::kEndpointIndependent;
}

}  // namespace warren::mesh
