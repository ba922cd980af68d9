// The coordinator's roster service (see roster_service.h).

#include "server/roster_service.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace warren::server {

std::string mesh_label(std::string_view client_name) {
  std::string out;
  out.reserve(client_name.size());
  for (char ch : client_name) {
    const char c = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    out.push_back(keep ? c : '-');
  }
  auto trim = [](std::string& s) {
    const auto first = s.find_first_not_of('-');
    if (first == std::string::npos) {
      s.clear();
      return;
    }
    s = s.substr(first, s.find_last_not_of('-') - first + 1);
  };
  trim(out);
  if (out.size() > mesh::kMaxNameLength) {
    out.resize(mesh::kMaxNameLength);
    trim(out);
  }
  return out.empty() ? std::string("node") : out;
}

namespace {

/// `base` with the suffix "-n", cut so that the whole stays a label of at most 63 characters.
std::string with_suffix(const std::string& base, unsigned n) {
  const std::string suffix = "-" + std::to_string(n);
  std::string head = base.substr(0, mesh::kMaxNameLength - suffix.size());
  while (!head.empty() && head.back() == '-')
    head.pop_back();
  return head + suffix;
}

/// True when `name` is `base` or `base` made unique by with_suffix.
bool name_of_base(const std::string& name, const std::string& base) {
  if (name == base)
    return true;
  const auto dash = name.rfind('-');
  if (dash == std::string::npos || dash + 1 == name.size())
    return false;
  const std::string digits = name.substr(dash + 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      digits.size() > 6 || digits.front() == '0')
    return false;
  return name == with_suffix(base, static_cast<unsigned>(std::stoul(digits)));
}

std::string key_text(const crypto::PublicKey& key) {
  return key.to_base64().substr(0, 8) + "...";
}

}  // namespace

// ---- core -------------------------------------------------------------------------------------

RosterCore::RosterCore(mesh::AddressPlan plan, LogFn log, std::uint64_t first_version)
    : roster_(std::move(plan)), log_(std::move(log)) {
  // Versions start at `first_version`, not 0: a node still holding a version from an earlier
  // run of the coordinator (which counted from its own start) must not find it valid here. An
  // empty snapshot at that version sets both the version and the history horizon, so diff()
  // of any older version is ESTALE and the node gets a snapshot.
  if (first_version > 0) {
    mesh::RosterDelta start;
    start.full = true;
    start.to_version = first_version;
    if (auto s = roster_.apply(start); !s)
      log_("roster: cannot start at version " + std::to_string(first_version) + ": " +
           s.message());
  }
}

void RosterCore::set_clients(std::vector<ClientRecord> clients) {
  clients_ = std::move(clients);
}

void RosterCore::request(SessionId session, const crypto::PublicKey& key, std::uint64_t from) {
  Session& s = sessions_[session];
  s.key = key;
  s.requested = from;
}

void RosterCore::report_endpoints(const crypto::PublicKey& key,
                                  const control::EndpointReport& report) {
  reports_[key] = report;
}

void RosterCore::session_closed(SessionId session) {
  sessions_.erase(session);
}

void RosterCore::apply_clients() {
  if (!clients_)
    return;
  std::vector<ClientRecord> clients = std::move(*clients_);
  clients_.reset();
  const mesh::AddressPlan& plan = roster_.plan();
  // The nodes among the clients (see the header), oldest enrollment first: that order decides
  // who gets a contested name.
  std::erase_if(clients, [&](const ClientRecord& c) {
    if (c.invite_id.empty())
      return true;  // exported: a stock WireGuard client, no session, no roster
    const std::string id = c.public_key.to_base64();
    const std::vector<Lease> derived = {Lease{plan.v4(id, c.mesh_v4_index), false},
                                        Lease{plan.v6(id), false}};
    return c.leases != derived;
  });
  std::sort(clients.begin(), clients.end(), [](const ClientRecord& a, const ClientRecord& b) {
    return std::tie(a.enrolled_at, a.name) < std::tie(b.enrolled_at, b.name);
  });
  if (clients.size() > mesh::kMaxNodes) {
    log_("roster: " + std::to_string(clients.size()) + " nodes; only the first " +
         std::to_string(mesh::kMaxNodes) + " (by enrollment) are in the roster");
    clients.resize(mesh::kMaxNodes);
  }

  // Names: a node keeps the name it has while that is still its label (or the label made
  // unique); the others take the label, or the label with the lowest free "-N".
  std::vector<std::string> names(clients.size());
  std::set<std::string> used;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const mesh::NodeEntry* e = roster_.find(clients[i].public_key);
    if (e && name_of_base(e->name, mesh_label(clients[i].name)) && used.insert(e->name).second)
      names[i] = e->name;
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    if (!names[i].empty())
      continue;
    const std::string base = mesh_label(clients[i].name);
    std::string name = base;
    for (unsigned n = 2; used.count(name); ++n)
      name = with_suffix(base, n);
    used.insert(name);
    names[i] = name;
  }

  // Removed first (their names and addresses become free), then the rest; an upsert that
  // collides with a name another node gives up later in this pass is retried once.
  std::set<crypto::PublicKey> wanted;
  for (const auto& c : clients)
    wanted.insert(c.public_key);
  std::vector<crypto::PublicKey> gone;
  for (const auto& [key, e] : roster_.nodes())
    if (!wanted.count(key))
      gone.push_back(key);
  for (const auto& key : gone) {
    (void)roster_.remove(key);  // present: it was just listed
    endpoints_.erase(key);
  }
  std::vector<mesh::NodeEntry> retry;
  for (int round = 0; round < 2; ++round) {
    std::vector<mesh::NodeEntry> todo;
    if (round == 0) {
      for (std::size_t i = 0; i < clients.size(); ++i) {
        const ClientRecord& c = clients[i];
        mesh::NodeEntry e = mesh::make_entry(plan, names[i], c.public_key, c.mesh_v4_index);
        if (c.revoked() || c.disabled()) {
          e.state = mesh::NodeState::kRevoked;
          endpoints_.erase(c.public_key);
        } else if (auto ep = endpoints_.find(c.public_key); ep != endpoints_.end()) {
          e.local_endpoints = ep->second.local;
          e.reflexive = ep->second.reflexive;
        }
        todo.push_back(std::move(e));
      }
    } else {
      todo.swap(retry);
    }
    for (auto& e : todo) {
      const mesh::NodeEntry* have = roster_.find(e.key);
      if (have && *have == e)
        continue;
      if (auto s = roster_.upsert(e); !s) {
        if (round == 0 && s.code() == EEXIST)
          retry.push_back(std::move(e));
        else
          log_("roster: node " + e.name + " (" + key_text(e.key) + ") left out: " + s.message());
      }
    }
  }
}

void RosterCore::apply_reports() {
  for (auto& [key, report] : reports_) {
    const mesh::NodeEntry* e = roster_.find(key);
    if (!e || e->state != mesh::NodeState::kActive)
      continue;  // not (or no longer) a node: nothing to tell the others
    control::CheckedEndpoints checked = control::check_endpoint_report(report);
    if (!checked.rejected.empty()) {
      std::string list;
      for (const auto& r : checked.rejected)
        list += (list.empty() ? "" : ", ") + r;
      log_("roster: endpoints reported by " + e->name + " ignored: " + list);
    }
    endpoints_[key] = checked.kept;
    mesh::NodeEntry next = *e;
    next.local_endpoints = checked.kept.local;
    next.reflexive = checked.kept.reflexive;
    if (next == *e)
      continue;  // nothing changed: no version step
    if (auto s = roster_.upsert(std::move(next)); !s)
      log_("roster: endpoints of " + e->name + " not taken: " + s.message());
  }
  reports_.clear();
}

std::shared_ptr<const std::string> RosterCore::message_from(std::uint64_t from) {
  if (auto it = cache_.find(from); it != cache_.end())
    return it->second;
  auto d = roster_.diff(from);
  if (!d.ok())  // ESTALE: the snapshot (diff(0) itself cannot fail)
    return cache_[from] = message_from(0);
  return cache_[from] = std::make_shared<const std::string>(control::roster_message_to_json(*d));
}

std::vector<RosterCore::Frame> RosterCore::tick() {
  cache_.clear();
  apply_clients();
  apply_reports();
  std::vector<Frame> frames;
  const std::uint64_t version = roster_.version();
  std::size_t bytes = 0;
  // Round robin from the cursor, so that a budget cut never starves the same sessions.
  auto it = sessions_.lower_bound(cursor_);
  for (std::size_t visited = 0; visited < sessions_.size(); ++visited, ++it) {
    if (it == sessions_.end())
      it = sessions_.begin();
    auto& [id, s] = *it;
    const mesh::NodeEntry* e = roster_.find(s.key);
    if (!e || e->state != mesh::NodeState::kActive)
      continue;  // a request waits until the node is active; no pushes meanwhile
    std::uint64_t from = 0;
    if (s.requested)
      from = *s.requested;
    else if (s.sent && *s.sent != version)
      from = *s.sent;
    else
      continue;  // up to date, or never asked
    auto message = message_from(from);
    if (!frames.empty() && bytes + message->size() > max_bytes_per_tick_) {
      cursor_ = id;  // over budget: this one and the rest first at the next tick
      break;
    }
    bytes += message->size();
    s.requested.reset();
    s.sent = version;
    frames.push_back(Frame{id, std::move(message)});
  }
  frames_sent_ += frames.size();
  cache_.clear();
  return frames;
}

// ---- service ------------------------------------------------------------------------------------

namespace {

/// Microseconds since the Unix epoch: the first roster version of this run (see RosterCore).
std::uint64_t first_version_now() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

RosterService::RosterService(mesh::AddressPlan plan, Send send, LogFn log)
    : core_(std::move(plan), log, first_version_now()), send_(std::move(send)), log_(std::move(log)) {}

RosterService::~RosterService() {
  stop();
}

void RosterService::start() {
  thread_ = std::thread([this] { run(); });
}

void RosterService::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void RosterService::clients_changed(std::vector<ClientRecord> clients) {
  std::lock_guard lock(mutex_);
  core_.set_clients(std::move(clients));
}

void RosterService::on_session_message(SessionId session, const crypto::PublicKey& key,
                                       std::string_view type, std::string_view message) {
  if (type == control::kRosterRequestType) {
    auto r = control::parse_roster_request(message);
    if (!r.ok()) {
      log_("roster: roster_request from " + key_text(key) + " ignored: " + r.message());
      return;
    }
    std::lock_guard lock(mutex_);
    core_.request(session, key, r->from);
  } else if (type == control::kEndpointsMessageType) {
    auto r = control::parse_endpoints(message);
    if (!r.ok()) {
      log_("roster: endpoints from " + key_text(key) + " ignored: " + r.message());
      return;
    }
    std::lock_guard lock(mutex_);
    core_.report_endpoints(key, *r);
  }
}

void RosterService::on_session_closed(SessionId session) {
  std::lock_guard lock(mutex_);
  core_.session_closed(session);
}

mesh::Roster RosterService::roster() const {
  std::lock_guard lock(mutex_);
  return core_.roster();
}

std::size_t RosterService::sessions() const {
  std::lock_guard lock(mutex_);
  return core_.sessions();
}

void RosterService::run() {
  for (;;) {
    std::vector<RosterCore::Frame> frames;
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, kTick, [&] { return stop_; }))
        return;
      frames = core_.tick();
    }
    for (auto& f : frames)
      send_(f.session, std::move(f.message));
  }
}

}  // namespace warren::server
