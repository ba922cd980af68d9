#pragma once
/// TUN offloads without I/O: the virtio-net header, Internet checksums, splitting a TSO/USO
/// super-packet into wire-size segments (read side) and coalescing a batch of decrypted
/// packets into super-packets per flow (write side, "GRO").
///
///   kernel TCP ──64 KiB super-packet──► TUN read ──split_segment()──► ≤ MTU packets ──► encrypt
///   decrypt ──≤ MTU packets──► GroCoalescer ──super-packet + virtio hdr──► TUN write ──► kernel
///
/// Checksum rules (see docs/OFFLOADS.md):
///  - Every packet split out of a super-packet carries complete, valid checksums (IPv4 header,
///    TCP/UDP): the peer's kernel receives it as an ordinary packet from the wire.
///  - A plain packet the kernel marked NEEDS_CSUM gets its partial checksum completed.
///  - A coalesced super-packet is written with NEEDS_CSUM and the pseudo-header sum in its L4
///    checksum field (the kernel's CHECKSUM_PARTIAL form); only packets whose own checksum
///    verified are coalesced, so a corrupt packet is never turned into an accepted one.
///
/// Nothing here allocates per packet; every parser is bounds-checked against its span.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/bytes.h"

namespace warren::net {

// ---- virtio-net header (struct virtio_net_hdr, 10 bytes, native byte order on Linux TUN) --

inline constexpr std::size_t kVirtioNetHdrSize = 10;

inline constexpr std::uint8_t kVirtioNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr std::uint8_t kVirtioDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID

inline constexpr std::uint8_t kGsoNone = 0;    // VIRTIO_NET_HDR_GSO_NONE
inline constexpr std::uint8_t kGsoTcpV4 = 1;   // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr std::uint8_t kGsoUdp = 3;     // VIRTIO_NET_HDR_GSO_UDP (UFO; never accepted)
inline constexpr std::uint8_t kGsoTcpV6 = 4;   // VIRTIO_NET_HDR_GSO_TCPV6
inline constexpr std::uint8_t kGsoUdpL4 = 5;   // VIRTIO_NET_HDR_GSO_UDP_L4 (USO)
inline constexpr std::uint8_t kGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN

struct VirtioNetHdr {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;
};

/// `p` must hold kVirtioNetHdrSize bytes.
VirtioNetHdr decode_virtio_net_hdr(const std::uint8_t* p);
void encode_virtio_net_hdr(const VirtioNetHdr& hdr, std::uint8_t* p);

// ---- Internet checksum (RFC 1071) --------------------------------------------------------

/// Adds `data` to a running one's-complement sum. Chain calls only at even offsets into the
/// summed byte string (an odd-length piece is padded with a zero byte, as a last piece is).
std::uint64_t checksum_add(ConstBytes data, std::uint64_t sum = 0);
/// Adds a 16-bit big-endian word (e.g. a length or protocol of a pseudo-header).
std::uint64_t checksum_add_be16(std::uint16_t word, std::uint64_t sum);
/// Folds to 16 bits: the sum as a host value of the big-endian word (not complemented).
std::uint16_t checksum_fold(std::uint64_t sum);
/// Sum of the TCP/UDP pseudo-header for an IPv4 (4-byte) or IPv6 (16-byte) address pair.
std::uint64_t pseudo_header_sum(ConstBytes source, ConstBytes destination, std::uint8_t protocol,
                                std::uint32_t l4_length);

inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;

// ---- read side: split ------------------------------------------------------------------

/// Why a frame read from the TUN was refused (each drops the frame; the TUN counts them).
enum class GsoError : std::uint8_t {
  kNone = 0,
  kTruncated,        ///< shorter than the virtio header, or than the headers it describes
  kBadIpHeader,      ///< not IPv4/IPv6, bad IHL, fragment, IPv6 extension header
  kBadGsoType,       ///< unknown gso_type, or one that does not match the packet
  kBadGsoSize,       ///< gso_size 0 on a GSO frame
  kBadHdrLen,        ///< hdr_len beyond the frame
  kBadCsumStart,     ///< csum_start outside the packet or not at the L4 header of a GSO frame
  kBadCsumOffset,    ///< csum_offset outside the packet or not the L4 checksum field
  kBadL4Header,      ///< TCP data offset < 20 bytes or beyond the packet
  kTooManySegments,  ///< more segments than kMaxGsoSegments
};
const char* to_string(GsoError e);

/// The kernel's limit for one TUN super-packet is 64 KiB; with gso_size >= 1 that is at most
/// 65535 segments in theory, but a sane sender never produces more than this many.
inline constexpr std::size_t kMaxGsoSegments = 1024;

/// A validated frame from the TUN (virtio header + IP packet), ready to split.
struct GsoFrame {
  VirtioNetHdr vnet;
  ConstBytes packet;           ///< the IP packet after the virtio header
  std::size_t l3_len = 0;      ///< IP header length (= csum_start for GSO frames)
  std::size_t header_len = 0;  ///< IP + L4 header length (GSO frames)
  std::size_t segments = 1;    ///< packets this frame becomes
  std::uint8_t protocol = 0;   ///< kProtoTcp / kProtoUdp for GSO frames
  bool v6 = false;
  bool gso = false;  ///< false: one packet, only its checksum may need completing
};

struct GsoParse {
  GsoFrame frame;
  GsoError error = GsoError::kNone;
  bool ok() const { return error == GsoError::kNone; }
};

/// Validates `frame` = virtio header + packet. The virtio header's hdr_len is checked to lie
/// inside the frame but not trusted (kernels report the linear head length there); the header
/// length is computed from the packet.
GsoParse parse_gso_frame(ConstBytes frame);

/// Size of segment `index` (< frame.segments).
std::size_t segment_size(const GsoFrame& frame, std::size_t index);

/// Writes segment `index` of `frame` into `out` (at least segment_size(frame, index) bytes)
/// as a complete IP packet: lengths, IPv4 id (+index) and header checksum, TCP sequence
/// number, FIN/PSH only on the last and CWR only on the first segment, UDP length, and full
/// L4 checksum. A non-GSO frame is copied, its partial checksum completed if NEEDS_CSUM.
/// Returns the bytes written, 0 if `out` is too small.
std::size_t split_segment(const GsoFrame& frame, std::size_t index, Bytes out);

// ---- write side: coalesce ----------------------------------------------------------------

struct GroOptions {
  bool tcp = true;                ///< coalesce TCP (the kernel takes TSO frames)
  bool udp = false;               ///< coalesce UDP (only when the TUN accepted USO)
  std::size_t max_size = 65535;   ///< IP length of a super-packet at most
  std::size_t max_segments = 64;  ///< packets per super-packet at most
};

/// Groups a batch of IP packets into TUN frames. A frame is either one packet with an
/// all-zero virtio header, or a super-packet: a rewritten copy of the first member's headers,
/// then the payloads of all members, with a GSO virtio header. Members of one super-packet
/// are consecutive segments of one flow (same addresses, ports, ACK, window, options,
/// TTL/hop limit, TOS/traffic class, DF; contiguous TCP sequence numbers; equal payload sizes
/// with only the last one shorter; only ACK, and PSH on the last member; no IP options, no
/// fragments; a valid checksum). The frames are in the order of their first packets, so every
/// flow keeps its order.
///
/// The spans a frame returns point into the packets passed to coalesce() and into the
/// coalescer; they stay valid until the next coalesce() call. Not thread-safe (one per queue).
class GroCoalescer {
 public:
  static constexpr std::size_t kMaxHeader = 60 + 60;  // IPv4 max header + TCP max header

  struct Frame {
    ConstBytes vnet_hdr;  ///< kVirtioNetHdrSize bytes
    ConstBytes header;    ///< rewritten headers; empty for a plain packet
    /// A plain packet: the whole packet. A super-packet: each member's payload, which is the
    /// member packet's tail (packet.subspan(header.size())), so its headers precede it.
    std::span<const ConstBytes> payloads;
    std::size_t packets = 1;   ///< input packets in this frame
    std::size_t size() const;  ///< IP bytes (without the virtio header)
  };

  explicit GroCoalescer(GroOptions options = {});

  /// Groups `packets`; returns the number of frames. Packets that are not valid IP are passed
  /// through as plain frames (the kernel decides).
  std::size_t coalesce(std::span<const ConstBytes> packets);

  std::size_t frame_count() const { return groups_.size(); }
  Frame frame(std::size_t i) const;

  /// Copies frame `i` (virtio header + packet) into `out`; returns its length, 0 if too small.
  std::size_t flatten(std::size_t i, Bytes out) const;

  const GroOptions& options() const { return options_; }

 private:
  struct Group {
    std::uint32_t head = 0;  // first packet index
    std::uint32_t tail = 0;  // last packet index
    std::uint32_t count = 1;
    std::uint32_t total = 0;     // IP length if coalesced (header + payloads)
    std::uint32_t next_seq = 0;  // TCP: sequence number expected next
    std::uint16_t seg_size = 0;  // payload size of the first member
    std::uint16_t hdr_len = 0;   // L3 + L4 header length of the members
    std::uint16_t l3_len = 0;
    std::uint8_t protocol = 0;  // 0: not a candidate (plain frame)
    bool v6 = false;
    bool closed = false;  // a shorter or PSH segment ended it
    std::uint32_t spans_begin = 0;
    std::array<std::uint8_t, kVirtioNetHdrSize> vnet{};
    std::array<std::uint8_t, kMaxHeader> header{};
  };

  bool try_append(Group& g, std::size_t index, ConstBytes p, std::size_t hdr_len,
                  std::size_t payload, std::uint32_t seq);
  void finish(Group& g);
  std::size_t lookup(std::uint64_t hash, ConstBytes p, std::size_t l3_len);

  GroOptions options_;
  std::span<const ConstBytes> packets_;
  std::vector<Group> groups_;
  std::vector<std::uint32_t> next_;  // next member of the same group, per packet
  std::vector<ConstBytes> spans_;    // payload spans of all frames, frame by frame
  // Open-addressing flow table for one batch: slot -> group index + 1 (0 = empty).
  static constexpr std::size_t kTableSize = 512;
  std::array<std::uint32_t, kTableSize> table_{};
  std::array<std::uint32_t, kTableSize> table_gen_{};
  std::uint32_t generation_ = 0;
};

}  // namespace warren::net
