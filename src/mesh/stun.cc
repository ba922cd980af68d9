// STUN Binding codec (RFC 5389). Reading walks the attributes once, front to back, checking
// every length against what is left before touching a byte; writing appends to a vector and
// patches the header's length field before FINGERPRINT is computed, since the CRC covers it.

#include "mesh/stun.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>

namespace warren::mesh::stun {
namespace {

constexpr std::uint8_t kFamilyV4 = 0x01;
constexpr std::uint8_t kFamilyV6 = 0x02;
constexpr std::size_t kAttrHeaderSize = 4;
constexpr std::size_t kFingerprintAttrSize = kAttrHeaderSize + 4;

Error malformed(const std::string& what) {
  return Error(EBADMSG, "malformed STUN message: " + what);
}

std::string hex16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(v));
  return buf;
}

std::uint32_t crc32_of(ConstBytes data) {
  // zlib's CRC-32 is the ISO 3309 / ITU-T V.42 CRC that RFC 5389 §15.5 names.
  return static_cast<std::uint32_t>(crc32_z(0L, data.data(), data.size()));
}

std::size_t padded(std::size_t n) {
  return (n + 3) & ~std::size_t{3};
}

void put_header(std::vector<std::uint8_t>& out, std::uint16_t type, const TransactionId& id) {
  out.resize(kHeaderSize);
  store_be16(out.data(), type);
  store_be16(out.data() + 2, 0);  // patched by finish()
  store_be32(out.data() + 4, kMagicCookie);
  std::copy(id.begin(), id.end(), out.begin() + 8);
}

// Sets the length field and appends FINGERPRINT if asked: the length must already count the
// FINGERPRINT attribute when the CRC is taken (RFC 5389 §15.5).
void finish(std::vector<std::uint8_t>& out, bool fingerprint) {
  const std::size_t body = out.size() - kHeaderSize + (fingerprint ? kFingerprintAttrSize : 0);
  store_be16(out.data() + 2, static_cast<std::uint16_t>(body));
  if (!fingerprint)
    return;
  const std::uint32_t fp = crc32_of(out) ^ kFingerprintXor;
  const std::size_t at = out.size();
  out.resize(at + kFingerprintAttrSize);
  store_be16(out.data() + at, kAttrFingerprint);
  store_be16(out.data() + at + 2, 4);
  store_be32(out.data() + at + 4, fp);
}

// MAPPED-ADDRESS / XOR-MAPPED-ADDRESS value (RFC 5389 §15.1, §15.2): reserved byte, family,
// port, address. XOR: the port with the cookie's top 16 bits, the address with the cookie
// (IPv4) or with cookie || transaction id (IPv6); `header` supplies those 16 bytes.
Result<net::Endpoint> read_address(ConstBytes value, bool xored, const std::uint8_t* header,
                                   const char* name) {
  if (value.size() < 4)
    return malformed(std::string(name) + " is " + std::to_string(value.size()) + " bytes (< 4)");
  const std::uint8_t family = value[1];
  std::size_t len;
  if (family == kFamilyV4) {
    len = 4;
  } else if (family == kFamilyV6) {
    len = 16;
  } else {
    return malformed(std::string(name) + " has unknown address family " + std::to_string(family));
  }
  if (value.size() != 4 + len) {
    return malformed(std::string(name) + " of family " + std::to_string(family) + " is " +
                     std::to_string(value.size()) + " bytes (want " + std::to_string(4 + len) +
                     ")");
  }
  std::uint16_t port = load_be16(value.data() + 2);
  std::uint8_t addr[16];
  for (std::size_t i = 0; i < len; ++i)
    addr[i] = value[4 + i];
  if (xored) {
    port ^= static_cast<std::uint16_t>(kMagicCookie >> 16);
    for (std::size_t i = 0; i < len; ++i)
      addr[i] ^= header[4 + i];  // bytes 4..19 of the header: cookie || transaction id
  }
  if (port == 0)
    return malformed(std::string(name) + " has port 0");
  auto ip = net::IpAddress::from_bytes(addr, len);
  return net::Endpoint{*ip, port};  // len is 4 or 16: from_bytes cannot fail
}

}  // namespace

TransactionId new_transaction_id(RandomSource& random) {
  TransactionId id{};
  random.fill(id);
  return id;
}

bool is_stun(ConstBytes d) {
  if (d.size() < kHeaderSize || (d[0] & 0xC0) != 0 || load_be32(d.data() + 4) != kMagicCookie)
    return false;
  const std::size_t length = load_be16(d.data() + 2);
  return length % 4 == 0 && length == d.size() - kHeaderSize;
}

std::vector<std::uint8_t> build_binding_request(const TransactionId& id, bool fingerprint) {
  std::vector<std::uint8_t> out;
  put_header(out, kBindingRequest, id);
  finish(out, fingerprint);
  return out;
}

std::vector<std::uint8_t> build_binding_success(const TransactionId& id,
                                                const net::Endpoint& mapped, bool fingerprint) {
  std::vector<std::uint8_t> out;
  put_header(out, kBindingSuccess, id);
  const net::IpAddress ip = mapped.address.unmapped();
  const std::size_t len = ip.size();
  const std::size_t at = out.size();
  out.resize(at + kAttrHeaderSize + 4 + len);
  std::uint8_t* p = out.data() + at;
  store_be16(p, kAttrXorMappedAddress);
  store_be16(p + 2, static_cast<std::uint16_t>(4 + len));
  p[4] = 0;
  p[5] = ip.is_v4() ? kFamilyV4 : kFamilyV6;
  store_be16(p + 6, static_cast<std::uint16_t>(mapped.port ^ (kMagicCookie >> 16)));
  for (std::size_t i = 0; i < len; ++i)
    p[8 + i] = ip.data()[i] ^ out[4 + i];  // cookie || transaction id, as read_address undoes
  finish(out, fingerprint);
  return out;
}

Result<Message> parse(ConstBytes d) {
  if (d.size() < kHeaderSize) {
    return malformed(std::to_string(d.size()) + " bytes, shorter than the " +
                     std::to_string(kHeaderSize) + "-byte header");
  }
  if ((d[0] & 0xC0) != 0)
    return malformed("the top two bits of the message type are not zero");
  if (load_be32(d.data() + 4) != kMagicCookie)
    return malformed("no magic cookie 0x2112a442 at bytes 4..7");
  const std::size_t length = load_be16(d.data() + 2);
  if (length % 4 != 0)
    return malformed("length " + std::to_string(length) + " is not a multiple of 4");
  if (length != d.size() - kHeaderSize) {
    return malformed("length " + std::to_string(length) + " but " +
                     std::to_string(d.size() - kHeaderSize) + " bytes follow the header");
  }

  Message m;
  m.type = load_be16(d.data());
  std::copy(d.begin() + 8, d.begin() + 20, m.transaction_id.begin());

  bool after_integrity = false;
  std::size_t pos = kHeaderSize;
  while (pos < d.size()) {
    // length and pos are multiples of 4, so at least 4 bytes are left here.
    const std::uint16_t type = load_be16(d.data() + pos);
    const std::size_t len = load_be16(d.data() + pos + 2);
    const std::size_t value_at = pos + kAttrHeaderSize;
    if (padded(len) > d.size() - value_at) {
      return malformed("attribute " + hex16(type) + " at byte " + std::to_string(pos) + " claims " +
                       std::to_string(len) + " bytes, only " + std::to_string(d.size() - value_at) +
                       " are left");
    }
    const ConstBytes value = d.subspan(value_at, len);
    const std::size_t next = value_at + padded(len);

    if (type == kAttrFingerprint) {
      if (len != 4)
        return malformed("FINGERPRINT is " + std::to_string(len) + " bytes (want 4)");
      if (next != d.size())
        return malformed("FINGERPRINT is not the last attribute");
      const std::uint32_t want = crc32_of(d.first(pos)) ^ kFingerprintXor;
      if (load_be32(value.data()) != want)
        return malformed("FINGERPRINT does not match the message (corrupted or not STUN)");
      m.fingerprint = true;
    } else if (after_integrity) {
      // RFC 5389 §15.4: only FINGERPRINT may follow MESSAGE-INTEGRITY; anything else is ignored.
    } else if (type == kAttrXorMappedAddress || type == kAttrMappedAddress) {
      const bool xored = type == kAttrXorMappedAddress;
      auto ep =
          read_address(value, xored, d.data(), xored ? "XOR-MAPPED-ADDRESS" : "MAPPED-ADDRESS");
      if (!ep)
        return std::move(ep).error();
      auto& slot = xored ? m.xor_mapped : m.mapped;
      if (!slot)  // RFC 5389 §15: only the first occurrence needs to be processed
        slot = *ep;
    } else if (type == kAttrErrorCode) {
      if (len < 4)
        return malformed("ERROR-CODE is " + std::to_string(len) + " bytes (< 4)");
      if (!m.error_code) {
        m.error_code = (value[2] & 0x07) * 100 + value[3];
        // Printable ASCII only, bounded: the reason ends up in a log line.
        for (std::size_t i = 4; i < value.size() && m.error_reason.size() < 128; ++i)
          m.error_reason +=
              (value[i] >= 0x20 && value[i] < 0x7f) ? static_cast<char>(value[i]) : '?';
      }
    } else if (type == kAttrMessageIntegrity) {
      m.message_integrity = true;
      after_integrity = true;
    } else if (type == kAttrUsername) {
      m.username = true;
    } else if (type == kAttrUnknownAttributes || type == kAttrRealm || type == kAttrNonce) {
      // Known to RFC 5389 but meaningless without credentials: nothing to read.
    } else if (type < 0x8000) {
      m.unknown_required.push_back(type);
    }
    pos = next;
  }
  return m;
}

Result<TransactionId> parse_binding_request(ConstBytes d) {
  auto m = parse(d);
  if (!m)
    return std::move(m).error();
  if (m->type != kBindingRequest)
    return Error(EPROTO, "STUN message type " + hex16(m->type) + " is not a Binding request");
  if (m->username || m->message_integrity)
    return Error(EPROTO, "STUN Binding request asks for authentication (not supported)");
  if (!m->unknown_required.empty()) {
    return Error(EPROTO, "STUN Binding request has unsupported comprehension-required attribute " +
                             hex16(m->unknown_required.front()));
  }
  return m->transaction_id;
}

Result<net::Endpoint> parse_binding_success(ConstBytes d, const TransactionId& expected) {
  auto m = parse(d);
  if (!m)
    return std::move(m).error();
  if (m->transaction_id != expected)
    return Error(EPROTO, "STUN answer to another transaction (stale or unsolicited)");
  if (m->type == kBindingError) {
    return Error(EPROTO, "STUN Binding error response " +
                             (m->error_code ? std::to_string(*m->error_code) : "(no ERROR-CODE)") +
                             (m->error_reason.empty() ? "" : " " + m->error_reason));
  }
  if (m->type != kBindingSuccess) {
    return Error(EPROTO,
                 "STUN message type " + hex16(m->type) + " is not a Binding success response");
  }
  if (!m->unknown_required.empty()) {
    return Error(EPROTO, "STUN Binding response has unknown comprehension-required attribute " +
                             hex16(m->unknown_required.front()));
  }
  if (m->xor_mapped)
    return *m->xor_mapped;
  if (m->mapped)
    return *m->mapped;
  return Error(EPROTO, "STUN Binding response has no XOR-MAPPED-ADDRESS or MAPPED-ADDRESS");
}

}  // namespace warren::mesh::stun
