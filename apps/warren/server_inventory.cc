// warren server clients | disable | enable, and invite/export --json and export --qr (see
// server_inventory.h; the JSON fields are documented in docs/SERVER.md "Inventory").

#include "server_inventory.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <map>

#include "base/secure.h"
#include "control/enroll.h"
#include "control/tls.h"
#include "qr_text.h"
#include "server/registry.h"

namespace warren::apps {
namespace {

std::string utc_text(std::int64_t t) {
  if (t == 0)
    return "never";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string ago(std::int64_t t, std::int64_t now) {
  if (t == 0)
    return "never";
  const std::int64_t d = std::max<std::int64_t>(0, now - t);
  const auto n = [](std::int64_t v, const char* unit) { return std::to_string(v) + unit + " ago"; };
  if (d < 120)
    return n(d, "s");
  if (d < 7200)
    return n(d / 60, "m");
  if (d < 172800)
    return n(d / 3600, "h");
  return n(d / 86400, "d");
}

std::vector<std::string> addresses_of(const server::ClientRecord& c) {
  std::vector<std::string> out;
  for (const auto& l : c.leases)
    out.push_back(l.address.to_string() + (l.address.is_v4() ? "/32" : "/128"));
  return out;
}

/// What the running server knows of a client: its peer, when it has one.
struct Live {
  std::int64_t last_handshake = 0;
  std::string endpoint;
};

std::map<crypto::PublicKey, Live> live_peers(const std::optional<control::InterfaceStatus>& live) {
  std::map<crypto::PublicKey, Live> out;
  if (live)
    for (const auto& p : live->peers)
      out[p.public_key] = Live{p.last_handshake, p.endpoint};
  return out;
}

/// The newest handshake known: the running server's, or the one it last wrote to the database
/// (it writes when the time moved by a minute, and it is all there is when no server runs).
std::int64_t last_handshake(const server::ClientRecord& c,
                            const std::map<crypto::PublicKey, Live>& peers) {
  auto it = peers.find(c.public_key);
  return std::max(c.last_seen, it == peers.end() ? 0 : it->second.last_handshake);
}

/// The running server's status, or nullopt (with a note on stderr when one runs but did not
/// answer): `clients` then shows the database's last handshakes.
std::optional<control::InterfaceStatus> query_live(const server::ServerConfig& cfg) {
  try {
    auto s = control::query_status(cfg.interface);
    if (s.role == "server")
      return s;
    std::fprintf(stderr,
                 "warren server: %s is served by a warren %s, not a server; last handshakes are "
                 "the database's\n",
                 cfg.interface.c_str(), s.role.c_str());
    return std::nullopt;
  } catch (const control::DaemonNotRunning&) {
    return std::nullopt;
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "warren server: cannot read the running server's status (%s); last handshakes "
                 "are the database's (up to a minute old)\n",
                 e.what());
    return std::nullopt;
  }
}

int set_disabled(std::string_view verb, const std::string& name, server::ServerState& st,
                 std::int64_t now, const std::function<int()>& notify) {
  const server::ClientRecord c =
      verb == "disable" ? st.registry->disable(name, now) : st.registry->enable(name);
  std::string addrs;
  for (const auto& a : addresses_of(c))
    addrs += " " + a;
  std::fprintf(stderr, "warren server: %s %s (its addresses:%s)\n",
               verb == "disable" ? "disabled" : "enabled", name.c_str(),
               addrs.empty() ? " none" : addrs.c_str());
  return notify();
}

}  // namespace

bool is_inventory_verb(std::string_view verb) {
  return verb == "clients" || verb == "disable" || verb == "enable";
}

nlohmann::json clients_json(const std::vector<server::ClientRecord>& clients,
                            const std::optional<control::InterfaceStatus>& live) {
  const auto peers = live_peers(live);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : clients) {
    auto it = peers.find(c.public_key);
    out.push_back({{"name", c.name},
                   {"public_key", c.public_key.to_base64()},
                   {"addresses", addresses_of(c)},
                   {"state", std::string(server::client_state(c))},
                   {"peer", it != peers.end()},
                   {"last_handshake", last_handshake(c, peers)},
                   {"endpoint", it != peers.end() ? it->second.endpoint : std::string()},
                   {"enrolled_at", c.enrolled_at},
                   {"invite_id", c.invite_id},
                   {"disabled_at", c.disabled_at},
                   {"revoked_at", c.revoked_at},
                   {"server_running", live.has_value()}});
  }
  return out;
}

std::string clients_table(const std::vector<server::ClientRecord>& clients,
                          const std::optional<control::InterfaceStatus>& live, std::int64_t now) {
  const auto peers = live_peers(live);
  std::vector<std::array<std::string, 7>> rows;
  rows.push_back({"NAME", "STATE", "ADDRESSES", "HANDSHAKE", "ENROLLED (UTC)", "INVITE", "KEY"});
  for (const auto& c : clients) {
    std::string addrs;
    for (const auto& a : addresses_of(c))
      addrs += (addrs.empty() ? "" : ",") + a;
    rows.push_back({c.name, std::string(server::client_state(c)), addrs.empty() ? "-" : addrs,
                    ago(last_handshake(c, peers), now), utc_text(c.enrolled_at),
                    c.invite_id.empty() ? "(export)" : c.invite_id, c.public_key.to_base64()});
  }
  std::array<std::size_t, 7> width{};
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size())
        line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  if (clients.empty())
    out += "(no clients)\n";
  out += live ? "last handshakes: live, from the running server\n"
              : "last handshakes: from the database (no server answered)\n";
  return out;
}

nlohmann::json invite_json(const std::string& line, const server::InviteRecord& r) {
  nlohmann::json j = {{"invite", line},
                      {"id", r.id},
                      {"name", r.name},
                      {"max_uses", r.max_uses},
                      {"uses_left", r.uses_left},
                      {"created_at", r.created_at},
                      {"expires_at", r.expires_at}};
  if (auto inv = control::parse_invite(line)) {
    j["control_endpoint"] = inv->control_endpoint;
    j["fingerprint"] = control::fingerprint_to_hex(inv->fingerprint);
  }
  return j;
}

bool print_export(const server::Registry& registry, const server::ClientRecord& client,
                  const crypto::PrivateKey& key, ExportFormat format) {
  std::string conf = registry.wg_quick_config(client, key);
  std::string out;
  bool ok = true;
  switch (format) {
    case ExportFormat::kText:
      out = conf;
      break;
    case ExportFormat::kJson: {
      const control::Enrollment e = registry.enrollment_for(client);
      auto strings = [](const auto& v) {
        std::vector<std::string> s;
        for (const auto& x : v)
          s.push_back(x.to_string());
        return s;
      };
      std::string private_key = crypto::secret_to_base64(key);
      nlohmann::json j = {{"name", client.name},
                          {"public_key", client.public_key.to_base64()},
                          {"private_key", private_key},
                          {"addresses", strings(e.addresses)},
                          {"dns", strings(e.dns)},
                          {"mtu", e.mtu},
                          {"server_public_key", e.server_public_key.to_base64()},
                          {"endpoint", e.server_endpoint},
                          {"allowed_ips", strings(e.routes)},
                          {"persistent_keepalive", e.persistent_keepalive},
                          {"config", conf}};
      secure_zero(private_key.data(), private_key.size());
      out = j.dump(2) + "\n";
      // nlohmann keeps its own copies of the key; wipe them before the object goes.
      for (const char* k : {"private_key", "config"}) {
        auto& s = j[k].get_ref<std::string&>();
        secure_zero(s.data(), s.size());
      }
      break;
    }
    case ExportFormat::kQrUtf8:
    case ExportFormat::kQrAscii: {
      auto symbol = qr_encode(conf);
      if (!symbol) {
        std::fprintf(stderr, "warren server: cannot make a QR code of the config: %s\n",
                     symbol.message().c_str());
        ok = false;
        break;
      }
      out = qr_render(*symbol, format == ExportFormat::kQrUtf8 ? QrStyle::kUtf8 : QrStyle::kAscii);
      break;
    }
  }
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  secure_zero(out.data(), out.size());
  secure_zero(conf.data(), conf.size());
  return ok;
}

int run_inventory(std::string_view verb, const std::string& name, bool json,
                  const server::ServerConfig& cfg, server::ServerState& st, std::int64_t now,
                  const std::function<int()>& notify) {
  if (verb == "disable" || verb == "enable")
    return set_disabled(verb, name, st, now, notify);
  const auto live = query_live(cfg);
  const auto clients = st.registry->clients();
  if (json)
    std::printf("%s\n", clients_json(clients, live).dump(2).c_str());
  else
    std::fputs(clients_table(clients, live, now).c_str(), stdout);
  return 0;
}

}  // namespace warren::apps
