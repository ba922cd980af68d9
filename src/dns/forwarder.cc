// The forwarder's table of outstanding queries, the per-address rate limit and resolv.conf
// (see forwarder.h).

#include "dns/forwarder.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <iterator>
#include <utility>

namespace warren::dns {
namespace {

bool same_question(const Question& a, const Question& b) {
  // Names are canonical (lower case): a resolver that answers with the 0x20 case pattern of
  // the query still matches.
  return a.name == b.name && a.type == b.type && a.klass == b.klass;
}

constexpr std::size_t kHeaderSize = 12;

}  // namespace

Forwarder::Forwarder(std::vector<net::Endpoint> upstreams, ForwarderOptions options,
                     RandomSource& random)
    : upstreams_(std::move(upstreams)), options_(options), random_(random) {}

void Forwarder::set_upstreams(std::vector<net::Endpoint> upstreams) {
  upstreams_ = std::move(upstreams);
  next_upstream_ = 0;
}

std::uint16_t Forwarder::fresh_id() {
  // The table holds at most max_outstanding (far below 65,536) ids, so a free one is found in
  // a few draws; every id is drawn from the CSPRNG, never counted up.
  for (;;) {
    std::array<std::uint8_t, 2> b{};
    random_.fill(b);
    const auto id = static_cast<std::uint16_t>(b[0] << 8 | b[1]);
    if (!table_.contains(id))
      return id;
  }
}

Result<UpstreamQuery> Forwarder::datagram_for(std::uint16_t id, const Entry& e) const {
  auto d = with_id(e.query, id);
  if (!d)
    return d.error();
  return UpstreamQuery{e.upstream, std::move(*d)};
}

Result<UpstreamQuery> Forwarder::forward(ConstBytes query, const Client& client, MonoTime now) {
  auto q = parse_question(query);
  if (!q)
    return q.error();
  if (upstreams_.empty())
    return Error(ENETUNREACH, "no upstream resolver to forward to");
  if (table_.size() >= options_.max_outstanding) {
    ++stats_.table_full;
    return Error(EAGAIN, std::to_string(table_.size()) + " queries are already in flight");
  }
  Entry e;
  e.client = client;
  e.client_id = q->id;
  e.question = std::move(*q);
  e.query.assign(query.begin(), query.end());
  e.upstream_index = next_upstream_ % upstreams_.size();
  next_upstream_ = (e.upstream_index + 1) % upstreams_.size();
  e.upstream = upstreams_[e.upstream_index];
  e.deadline = now + options_.timeout;
  const std::uint16_t id = fresh_id();
  auto d = datagram_for(id, e);
  if (!d)
    return d.error();
  table_.emplace(id, std::move(e));
  ++stats_.forwarded;
  return d;
}

Result<Delivery> Forwarder::on_response(const net::Endpoint& from, ConstBytes response) {
  if (response.size() < kHeaderSize || (response[2] & 0x80u) == 0) {
    ++stats_.mismatched;
    return Error(EBADMSG, "not a DNS response");
  }
  auto q = parse_question(response);
  if (!q) {
    ++stats_.mismatched;
    return q.error();
  }
  auto it = table_.find(q->id);
  if (it == table_.end()) {
    ++stats_.mismatched;
    return Error(ENOENT, "no query with id " + std::to_string(q->id) + " is outstanding");
  }
  const Entry& e = it->second;
  if (from != e.upstream) {
    ++stats_.mismatched;
    return Error(EPERM, "response for id " + std::to_string(q->id) + " came from " +
                            from.to_string() + ", the query went to " + e.upstream.to_string());
  }
  if (!same_question(*q, e.question)) {
    ++stats_.mismatched;
    return Error(EPERM, "response for id " + std::to_string(q->id) + " answers " + q->name +
                            ", the query asked " + e.question.name);
  }
  auto back = with_id(response, e.client_id);
  if (!back)
    return back.error();
  auto fitted = fit_response(*back, response_limit(e.client.transport, e.question.udp_limit));
  Delivery out{e.client, {}, e.upstream, e.query};
  table_.erase(it);
  if (!fitted)
    return fitted.error();
  ++stats_.answered;
  out.response = std::move(*fitted);
  return out;
}

bool truncated(ConstBytes response) {
  return response.size() >= kHeaderSize && (response[2] & 0x02u) != 0;
}

Forwarder::Expired Forwarder::expire(MonoTime now) {
  Expired out;
  std::vector<std::pair<std::uint16_t, Entry>> again;
  for (auto it = table_.begin(); it != table_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    Entry e = std::move(it->second);
    it = table_.erase(it);
    const std::size_t limit = std::min(options_.attempts, upstreams_.size());
    if (e.attempt < limit) {
      ++e.attempt;
      e.upstream_index = (e.upstream_index + 1) % upstreams_.size();
      e.upstream = upstreams_[e.upstream_index];
      e.deadline = now + options_.timeout;
      again.emplace_back(0, std::move(e));
      continue;
    }
    ++stats_.timed_out;
    if (auto r = error_response(e.query, Rcode::kServFail))
      out.failed.push_back({e.client, std::move(*r)});
  }
  // New ids only after the sweep, so that a resent entry is not met again in it.
  for (auto& [unused, e] : again) {
    const std::uint16_t id = fresh_id();
    if (auto d = datagram_for(id, e)) {
      out.resend.push_back(std::move(*d));
      table_.emplace(id, std::move(e));
      ++stats_.retried;
    }
  }
  return out;
}

MonoTime Forwarder::next_deadline() const {
  MonoTime t = kNoDeadline;
  for (const auto& [id, e] : table_)
    t = std::min(t, e.deadline);
  return t;
}

void Forwarder::forget_connection(std::uint64_t connection) {
  if (connection == 0)
    return;
  std::erase_if(table_, [&](const auto& kv) { return kv.second.client.connection == connection; });
}

RateLimiter::RateLimiter(double rate, double burst, std::size_t max_addresses)
    : rate_(rate), burst_(burst), max_(max_addresses) {}

bool RateLimiter::allow(const net::IpAddress& address, MonoTime now) {
  auto refill = [&](Bucket& b) {
    const double seconds = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + std::max(0.0, seconds) * rate_);
    b.last = now;
  };
  auto it = buckets_.find(address);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_) {
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        refill(b->second);
        b = b->second.tokens >= burst_ ? buckets_.erase(b) : std::next(b);
      }
      if (buckets_.size() >= max_)
        return false;
    }
    it = buckets_.emplace(address, Bucket{burst_, now}).first;
  }
  refill(it->second);
  if (it->second.tokens < 1.0)
    return false;
  it->second.tokens -= 1.0;
  return true;
}

std::vector<net::Endpoint> upstreams_from_resolv_conf(std::string_view text,
                                                      const std::vector<net::IpAddress>& own) {
  std::vector<net::Endpoint> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto skip_space = [](std::string_view& s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    };
    skip_space(line);
    constexpr std::string_view kKeyword = "nameserver";
    if (!line.starts_with(kKeyword))
      continue;
    line.remove_prefix(kKeyword.size());
    if (line.empty() || (line.front() != ' ' && line.front() != '\t'))
      continue;
    skip_space(line);
    const std::size_t end = line.find_first_of(" \t\r#;");
    const std::string_view word = line.substr(0, end);
    if (word.find('%') != std::string_view::npos)
      continue;  // a link-local address with a zone
    auto a = net::IpAddress::parse(word);
    if (!a)
      continue;
    const net::IpAddress addr = a->unmapped();
    if (std::find(own.begin(), own.end(), addr) != own.end())
      continue;
    const net::Endpoint ep{addr, 53};
    if (std::find(out.begin(), out.end(), ep) == out.end())
      out.push_back(ep);
  }
  return out;
}

}  // namespace warren::dns
