// RequestReader: cutting a byte stream into UAPI operations.

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "uapi/protocol.h"
#include "uapi_test_util.h"

namespace warren::uapi {
namespace {

using namespace testing;

// A compact description of one Request, for comparing sequences.
std::string describe(const Request& r) {
  switch (r.kind) {
    case RequestKind::kGet:
      return "get";
    case RequestKind::kSet:
      return "set[" + r.body + "]";
    case RequestKind::kReject:
      return "reject" + std::to_string(r.errno_value) + (r.close_after ? "+close" : "");
    case RequestKind::kClose:
      return "close";
  }
  return "?";
}

std::vector<std::string> drain(RequestReader& reader) {
  std::vector<std::string> out;
  while (auto r = reader.next()) {
    out.push_back(describe(*r));
  }
  return out;
}

std::vector<std::string> feed_whole(std::string_view stream, std::size_t cap = kMaxRequestBytes) {
  RequestReader reader(cap);
  reader.feed(stream);
  return drain(reader);
}

// Feeds `stream` in pieces cut at `cuts` (sorted offsets), draining after every piece.
std::vector<std::string> feed_split(std::string_view stream, const std::vector<std::size_t>& cuts) {
  RequestReader reader;
  std::vector<std::string> out;
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    reader.feed(stream.substr(from, cut - from));
    for (auto& s : drain(reader)) {
      out.push_back(s);
    }
    from = cut;
  }
  reader.feed(stream.substr(from));
  for (auto& s : drain(reader)) {
    out.push_back(s);
  }
  return out;
}

using V = std::vector<std::string>;

TEST(RequestReader, Get) {
  EXPECT_EQ(feed_whole("get=1\n\n"), V{"get"});
}

TEST(RequestReader, SetWithBody) {
  EXPECT_EQ(feed_whole("set=1\nlisten_port=1\nfwmark=2\n\n"), V{"set[listen_port=1\nfwmark=2\n]"});
}

TEST(RequestReader, EmptySet) {
  EXPECT_EQ(feed_whole("set=1\n\n"), V{"set[]"});
}

TEST(RequestReader, SeveralOperationsInOneChunk) {
  EXPECT_EQ(feed_whole("set=1\nlisten_port=1\n\nget=1\n\nset=1\n\nget=1\n\n"),
            (V{"set[listen_port=1\n]", "get", "set[]", "get"}));
}

TEST(RequestReader, IncompleteRequestsWait) {
  RequestReader reader;
  for (std::string_view part : {"g", "et=1", "\n"}) {
    reader.feed(part);
    EXPECT_FALSE(reader.next().has_value());
  }
  reader.feed("\nset=1\nlisten_port=1\n");
  EXPECT_EQ(drain(reader), V{"get"});
  EXPECT_EQ(reader.pending_bytes(), std::string_view("set=1\nlisten_port=1\n").size());
  reader.feed("\n");
  EXPECT_EQ(drain(reader), V{"set[listen_port=1\n]"});
  EXPECT_EQ(reader.pending_bytes(), 0u);
  EXPECT_FALSE(reader.closed());
}

TEST(RequestReader, EverySplitPointGivesTheSameRequests) {
  const std::string stream = "get=1\n\nset=1\nprivate_key=" + std::string(kPrivHex) +
                             "\nlisten_port=51820\npublic_key=" + std::string(kPeerHex) +
                             "\nallowed_ip=10.0.0.0/8\n\nset=1\n\nget=1\n\n";
  const V expected = feed_whole(stream);
  ASSERT_EQ(expected.size(), 4u);
  for (std::size_t i = 0; i <= stream.size(); ++i) {
    EXPECT_EQ(feed_split(stream, {i}), expected) << "split at " << i;
  }
  for (std::size_t i = 0; i < stream.size(); ++i) {
    for (std::size_t j = i + 1; j < stream.size(); j += 7) {
      ASSERT_EQ(feed_split(stream, {i, j}), expected) << "split at " << i << "," << j;
    }
  }
  std::vector<std::size_t> every_byte;
  for (std::size_t i = 1; i < stream.size(); ++i) {
    every_byte.push_back(i);
  }
  EXPECT_EQ(feed_split(stream, every_byte), expected);
}

TEST(RequestReader, GetFollowedByJunkIsEinvalThenTheRestIsRead) {
  // wireguard-go reads one byte after "get=1\n"; the next line is then an operation of its own.
  EXPECT_EQ(feed_whole("get=1\nx\n"), (V{"reject22", "close"}));
  EXPECT_EQ(feed_whole("get=1\nxget=1\n\n"), (V{"reject22", "get"}));
  EXPECT_EQ(feed_split("get=1\nxget=1\n\n", {6, 7, 8}), (V{"reject22", "get"}));
}

TEST(RequestReader, UnknownOperationClosesAtTheFirstWrongByte) {
  EXPECT_EQ(feed_whole("foo=1\n\n"), V{"close"});
  EXPECT_EQ(feed_whole("set=2\n\n"), V{"close"});
  EXPECT_EQ(feed_whole("get=10\n\n"), V{"close"});
  EXPECT_EQ(feed_whole("GET=1\n\n"), V{"close"});
  RequestReader reader;
  reader.feed("s");
  EXPECT_FALSE(reader.next().has_value());
  reader.feed("x");  // cannot become get=1 or set=1 any more
  EXPECT_EQ(drain(reader), V{"close"});
  EXPECT_TRUE(reader.closed());
}

TEST(RequestReader, LeadingBlankLineClosesTheConnection) {
  EXPECT_EQ(feed_whole("\nget=1\n\n"), V{"close"});
}

TEST(RequestReader, BlankLineRightAfterSetEndsItAndTheRestIsAnUnknownOperation) {
  // §3.4: a leading blank line makes the rest of the configuration silently ignored.
  EXPECT_EQ(feed_whole("set=1\n\nlisten_port=1\n\n"), (V{"set[]", "close"}));
}

TEST(RequestReader, NothingAfterClose) {
  RequestReader reader;
  reader.feed("bogus\nget=1\n\n");
  EXPECT_EQ(drain(reader), V{"close"});
  reader.feed("get=1\n\n");
  EXPECT_FALSE(reader.next().has_value());
  EXPECT_EQ(reader.pending_bytes(), 0u);
}

TEST(RequestReader, RequestsBeforeJunkAreStillServed) {
  EXPECT_EQ(feed_whole("get=1\n\nset=1\n\nnonsense\n"), (V{"get", "set[]", "close"}));
}

TEST(RequestReader, OversizedRequestIsRejectedAndBufferStaysBounded) {
  constexpr std::size_t kCap = 4096;
  RequestReader reader(kCap);
  reader.feed("set=1\n");
  EXPECT_FALSE(reader.next().has_value());
  std::string line = "allowed_ip=10.0.0.0/8\n";
  std::optional<Request> result;
  std::size_t max_pending = 0;
  for (int i = 0; i < 10000 && !result; ++i) {
    reader.feed(line);
    max_pending = std::max(max_pending, reader.pending_bytes());
    result = reader.next();
  }
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(describe(*result), "reject22+close");
  EXPECT_LE(max_pending, kCap + line.size());
  EXPECT_TRUE(reader.closed());
  EXPECT_EQ(reader.pending_bytes(), 0u);
  // Once closed, more input is dropped instead of buffered.
  reader.feed(std::string(100000, 'a'));
  EXPECT_EQ(reader.pending_bytes(), 0u);
}

TEST(RequestReader, CompleteButOversizedRequestIsRejected) {
  std::string big = "set=1\n";
  while (big.size() < 5000) {
    big += "listen_port=1\n";
  }
  big += "\n";
  EXPECT_EQ(feed_whole(big, 4096), V{"reject22+close"});
  EXPECT_EQ(feed_whole(big, big.size()), V{"set[" + big.substr(6, big.size() - 7) + "]"});
}

TEST(RequestReader, OneHugeFeedIsNotBufferedTwice) {
  // A request already over the cap makes further input be dropped before it is copied.
  RequestReader reader(1024);
  reader.feed("set=1\n" + std::string(2000, 'a'));
  std::size_t after_first = reader.pending_bytes();
  reader.feed(std::string(2000, 'a'));
  EXPECT_EQ(reader.pending_bytes(), after_first);
  ASSERT_EQ(drain(reader), V{"reject22+close"});
}

TEST(RequestReader, StressSizedSetArrivingInChunks) {
  // wireguard-go's stress test: 131073 allowed_ip lines in one set. The body must be found in
  // one pass (the terminator search resumes where it stopped) and parse completely.
  std::string stream = "set=1\npublic_key=" + std::string(kPeerHex) + "\n";
  constexpr int kLines = 131073;
  for (int i = 0; i < kLines; ++i) {
    stream += "allowed_ip=10." + std::to_string((i >> 16) & 255) + "." +
              std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + "/32\n";
  }
  stream += "\nget=1\n\n";
  RequestReader reader;
  std::vector<Request> requests;
  for (std::size_t off = 0; off < stream.size(); off += 65536) {
    reader.feed(std::string_view(stream).substr(off, 65536));
    while (auto r = reader.next()) {
      requests.push_back(std::move(*r));
    }
  }
  ASSERT_EQ(requests.size(), 2u);
  ASSERT_EQ(requests[0].kind, RequestKind::kSet);
  EXPECT_EQ(requests[1].kind, RequestKind::kGet);
  auto parsed = parse_set(requests[0].body);
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  const wg::ConfigDelta& d = *parsed;
  ASSERT_EQ(d.peers.size(), 1u);
  ASSERT_EQ(d.peers[0].allowed_ips_add.size(), static_cast<std::size_t>(kLines));
  EXPECT_EQ(d.peers[0].allowed_ips_add.back(), prefix("10.2.0.0/32"));
}

TEST(RequestReader, ManySmallRequestsDoNotGrowTheBuffer) {
  RequestReader reader;
  std::size_t gets = 0;
  for (int i = 0; i < 100000; ++i) {
    reader.feed("get=1\n\nge");
    while (auto r = reader.next()) {
      gets += r->kind == RequestKind::kGet;
    }
    reader.feed("t=1\n\n");
    while (auto r = reader.next()) {
      gets += r->kind == RequestKind::kGet;
    }
    EXPECT_EQ(reader.pending_bytes(), 0u);
  }
  EXPECT_EQ(gets, 200000u);
}

}  // namespace
}  // namespace warren::uapi
