// Inflate against streams zlib produces on the host: every strategy and level, raw (qcow2's
// windowBits -12) and zlib-wrapped, both stopping rules, and broken streams.
#include "crates/chain_read/inflate.h"

#include <zlib.h>

#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace instar::chain_read {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Deflate(const Bytes& in, int level, int window_bits, int strategy) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, window_bits, 9, strategy), Z_OK);
  Bytes out(deflateBound(&z, in.size()) + 64);
  z.next_in = const_cast<uint8_t*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// Text-like, runs, random and mixed inputs of several sizes.
std::vector<Bytes> Inputs() {
  std::mt19937 rng(7);
  std::vector<Bytes> inputs;
  for (size_t size : {0u, 1u, 100u, 4096u, 65536u, 300000u}) {
    Bytes text(size), random(size), runs(size), mixed(size);
    for (size_t i = 0; i < size; ++i) {
      text[i] = static_cast<uint8_t>("the quick brown fox jumps over a lazy dog "[rng() % 42]);
      random[i] = static_cast<uint8_t>(rng());
      runs[i] = static_cast<uint8_t>((i / 1000) % 3);
      mixed[i] = (i / 5000) % 2 ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(i % 251);
    }
    for (Bytes* b : {&text, &random, &runs, &mixed}) inputs.push_back(*b);
  }
  return inputs;
}

TEST(Inflate, MatchesZlibForEveryStrategy) {
  for (const Bytes& in : Inputs()) {
    for (int strategy : {Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED}) {
      for (int level : {0, 1, 6, 9}) {
        for (InflateWrapper wrapper : {InflateWrapper::kRaw, InflateWrapper::kZlib}) {
          const int window = wrapper == InflateWrapper::kRaw ? -12 : 15;
          const Bytes z = Deflate(in, level, window, strategy);
          Bytes out(in.size() + 1);
          auto r = Inflate(base::ByteView(z.data(), z.size()), wrapper,
                           InflateUntil::kStreamEnd, out.data(), out.size());
          ASSERT_TRUE(r.ok()) << "size " << in.size() << " strategy " << strategy << " level "
                              << level << " error " << static_cast<int>(r.error().code);
          EXPECT_EQ(r.value().written, in.size());
          EXPECT_EQ(r.value().consumed, z.size());
          out.resize(in.size());
          EXPECT_EQ(out, in);
        }
      }
    }
  }
}

TEST(Inflate, OutputFullStopsAtCapacityAndIgnoresTheRest) {
  Bytes in(65536);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i * 7 / 3);
  Bytes z = Deflate(in, 6, -12, Z_DEFAULT_STRATEGY);
  z.resize(z.size() + 700, 0xFF);  // qcow2 rounds the compressed size up to whole sectors
  Bytes out(in.size());
  auto r = Inflate(base::ByteView(z.data(), z.size()), InflateWrapper::kRaw,
                   InflateUntil::kOutputFull, out.data(), out.size());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().written, in.size());
  EXPECT_EQ(out, in);
  // A smaller capacity is filled with the stream's first bytes.
  Bytes half(1000);
  r = Inflate(base::ByteView(z.data(), z.size()), InflateWrapper::kRaw, InflateUntil::kOutputFull,
              half.data(), half.size());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::equal(half.begin(), half.end(), in.begin()));
}

TEST(Inflate, OutputFullRefusesAStreamThatEndsEarly) {
  const Bytes in(1000, 'a');
  const Bytes z = Deflate(in, 6, -12, Z_DEFAULT_STRATEGY);
  Bytes out(2000);
  auto r = Inflate(base::ByteView(z.data(), z.size()), InflateWrapper::kRaw,
                   InflateUntil::kOutputFull, out.data(), out.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, InflateError::kTruncated);
}

TEST(Inflate, StreamEndRefusesOutputPastCapacity) {
  const Bytes in(5000, 'b');
  const Bytes z = Deflate(in, 6, 15, Z_DEFAULT_STRATEGY);
  Bytes out(4999);
  auto r = Inflate(base::ByteView(z.data(), z.size()), InflateWrapper::kZlib,
                   InflateUntil::kStreamEnd, out.data(), out.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, InflateError::kOutputFull);
}

TEST(Inflate, EveryTruncationFails) {
  Bytes in(20000);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>((i * i) >> 5);
  for (int level : {0, 6}) {
    const Bytes z = Deflate(in, level, 15, Z_DEFAULT_STRATEGY);
    Bytes out(in.size());
    for (size_t cut = 0; cut < z.size(); ++cut) {
      auto r = Inflate(base::ByteView(z.data(), cut), InflateWrapper::kZlib,
                       InflateUntil::kStreamEnd, out.data(), out.size());
      EXPECT_FALSE(r.ok()) << cut;
    }
  }
}

TEST(Inflate, ZlibWrapperChecks) {
  const Bytes in(3000, 'c');
  Bytes z = Deflate(in, 6, 15, Z_DEFAULT_STRATEGY);
  Bytes out(in.size());
  Bytes bad = z;
  bad.back() ^= 1;
  auto r = Inflate(base::ByteView(bad.data(), bad.size()), InflateWrapper::kZlib,
                   InflateUntil::kStreamEnd, out.data(), out.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, InflateError::kBadChecksum);
  bad = z;
  bad[1] ^= 1;  // FCHECK
  r = Inflate(base::ByteView(bad.data(), bad.size()), InflateWrapper::kZlib,
              InflateUntil::kStreamEnd, out.data(), out.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, InflateError::kBadZlibHeader);
}

TEST(Inflate, HandMadeBrokenBlocks) {
  uint8_t out[64];
  // BFINAL=1, BTYPE=11.
  const uint8_t reserved[] = {0x07};
  auto r = Inflate(base::ByteView(reserved, 1), InflateWrapper::kRaw, InflateUntil::kStreamEnd,
                   out, sizeof out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, InflateError::kBadBlockType);
  // Stored block whose NLEN is not LEN's complement.
  const uint8_t stored[] = {0x01, 0x05, 0x00, 0x00, 0x00, 'x', 'x', 'x', 'x', 'x'};
  r = Inflate(base::ByteView(stored, sizeof stored), InflateWrapper::kRaw,
              InflateUntil::kStreamEnd, out, sizeof out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, InflateError::kBadStoredLength);
  // Fixed block starting with a back-reference (length 3, distance 1) into nothing.
  // Bits: BFINAL 1, BTYPE 01, length symbol 257 = 0000001 (7 bits), distance 0 = 00000.
  const uint8_t backref[] = {0x03, 0x02, 0x00};
  r = Inflate(base::ByteView(backref, sizeof backref), InflateWrapper::kRaw,
              InflateUntil::kStreamEnd, out, sizeof out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, InflateError::kBadDistance);
}

}  // namespace
}  // namespace instar::chain_read
