#include "crates/chain_read/inflate.h"

#include <stddef.h>

namespace instar::chain_read {
namespace {

using base::Fail;

constexpr uint32_t kMaxBits = 15;          // longest Huffman code (RFC 1951 3.2.2)
constexpr uint32_t kLiteralCodes = 288;    // literal/length alphabet incl. the two invalid ones
constexpr uint32_t kDistanceCodes = 32;    // distance alphabet incl. the two invalid ones
constexpr uint32_t kFastBits = 9;          // codes this short decode with one table lookup
constexpr uint32_t kEndOfBlock = 256;

// RFC 1951 3.2.5: base lengths and extra bits of length symbols 257..285.
constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
// Base distances and extra bits of distance symbols 0..29.
constexpr uint16_t kDistanceBase[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                        33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                        1025, 1537, 2049, 3073, 4097, 6145,  8193,  12289, 16385,
                                        24577};
constexpr uint8_t kDistanceExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                        6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// RFC 1951 3.2.7: the order code-length code lengths are stored in.
constexpr uint8_t kCodeLengthOrder[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                          11, 4,  12, 3, 13, 2, 14, 1, 15};

// LSB-first bit reader. Bits past the end of the input are missing, not zero: asking for
// them is kTruncated.
class BitReader {
 public:
  explicit BitReader(base::ByteView in) : in_(in) {}

  // Tops the buffer up to at least 57 bits where the input allows.
  void Refill() {
    while (count_ <= 56 && pos_ < in_.size()) {
      bits_ |= uint64_t{in_.data()[pos_++]} << count_;
      count_ += 8;
    }
  }
  bool Has(uint32_t n) {
    if (count_ < n) Refill();
    return count_ >= n;
  }
  // The next `n` (<= 32) bits, without consuming them; only valid after Has(n).
  uint32_t Peek(uint32_t n) const { return static_cast<uint32_t>(bits_ & ((1ull << n) - 1)); }
  void Drop(uint32_t n) {
    bits_ >>= n;
    count_ -= n;
  }
  bool Take(uint32_t n, uint32_t* v) {
    if (!Has(n)) return false;
    *v = Peek(n);
    Drop(n);
    return true;
  }
  void AlignToByte() { Drop(count_ % 8); }
  // After AlignToByte: hands back whole buffered bytes so the input can be read directly.
  void Unbuffer() {
    pos_ -= count_ / 8;
    bits_ = 0;
    count_ = 0;
  }
  uint64_t position() const { return pos_; }  // bytes consumed, including buffered ones
  uint64_t buffered_bytes() const { return count_ / 8; }
  void Skip(uint64_t n) { pos_ += n; }
  const uint8_t* cursor() const { return in_.data() + pos_; }
  uint64_t left() const { return in_.size() - pos_; }

 private:
  base::ByteView in_;
  uint64_t pos_ = 0;
  uint64_t bits_ = 0;
  uint32_t count_ = 0;
};

// A canonical Huffman code (RFC 1951 3.2.2): symbols sorted by code length, and a table
// indexed by the next kFastBits input bits for the short codes.
struct Huffman {
  uint16_t count[kMaxBits + 1];
  uint16_t symbol[kLiteralCodes];
  uint16_t fast[1u << kFastBits];  // symbol | length << 9; 0: longer code or no code
};

enum class CodeKind { kLengths, kLiterals, kDistances };

uint32_t ReverseBits(uint32_t code, uint32_t length) {
  uint32_t r = 0;
  for (uint32_t i = 0; i < length; ++i) r |= ((code >> i) & 1) << (length - 1 - i);
  return r;
}

// Builds the code for `n` code lengths. Like zlib, refuses over-subscribed codes, and
// incomplete ones except a distance code with a single one-bit code (or none at all).
bool Build(Huffman* h, const uint8_t* lengths, uint32_t n, CodeKind kind) {
  for (uint32_t i = 0; i <= kMaxBits; ++i) h->count[i] = 0;
  for (uint32_t i = 0; i < n; ++i) h->count[lengths[i]]++;
  for (uint32_t i = 0; i < (1u << kFastBits); ++i) h->fast[i] = 0;
  h->count[0] = 0;
  int32_t left = 1;
  uint32_t max_length = 0;
  for (uint32_t len = 1; len <= kMaxBits; ++len) {
    left = left * 2 - h->count[len];
    if (left < 0) return false;
    if (h->count[len] != 0) max_length = len;
  }
  // An empty code is accepted (decoding with it fails); an incomplete one only as zlib
  // accepts it: a single one-bit literal or distance code.
  if (left > 0 && max_length != 0 && (kind == CodeKind::kLengths || max_length != 1)) {
    return false;
  }
  uint16_t offsets[kMaxBits + 2];
  offsets[1] = 0;
  for (uint32_t len = 1; len <= kMaxBits; ++len) offsets[len + 1] = offsets[len] + h->count[len];
  for (uint32_t i = 0; i < n; ++i) {
    if (lengths[i] != 0) h->symbol[offsets[lengths[i]]++] = static_cast<uint16_t>(i);
  }
  // Fill the fast table: walk the symbols in canonical order, tracking each one's code.
  uint32_t code = 0, index = 0;
  for (uint32_t len = 1; len <= kFastBits; ++len) {
    for (uint32_t k = 0; k < h->count[len]; ++k, ++code, ++index) {
      const uint32_t reversed = ReverseBits(code, len);
      const uint16_t entry = static_cast<uint16_t>(h->symbol[index] | (len << 9));
      for (uint32_t fill = reversed; fill < (1u << kFastBits); fill += 1u << len) {
        h->fast[fill] = entry;
      }
    }
    code <<= 1;
  }
  return true;
}

// Decodes one symbol: kTruncated when the input ends first, kBadSymbol when the bits match no
// code (an incomplete distance code).
base::Status<InflateError> Decode(BitReader& bits, const Huffman& h, uint32_t* symbol) {
  if (bits.Has(kFastBits)) {
    const uint16_t entry = h.fast[bits.Peek(kFastBits)];
    if (entry != 0) {
      bits.Drop(entry >> 9);
      *symbol = entry & 0x1FF;
      return {};
    }
  }
  // Bit by bit: a code of length `len` is `first` + rank among the codes of that length.
  int32_t code = 0, first = 0, index = 0;
  for (uint32_t len = 1; len <= kMaxBits; ++len) {
    uint32_t bit;
    if (!bits.Take(1, &bit)) return Fail(InflateError::kTruncated);
    code |= static_cast<int32_t>(bit);
    const int32_t count = h.count[len];
    if (code - first < count) {
      *symbol = h.symbol[index + code - first];
      return {};
    }
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  return Fail(InflateError::kBadSymbol);
}

class Decoder {
 public:
  Decoder(base::ByteView in, InflateUntil until, uint8_t* out, uint64_t capacity)
      : bits_(in), until_(until), out_(out), capacity_(capacity) {}

  // Runs the blocks up to the final one, or in kOutputFull mode until the output is full.
  base::Status<InflateError> Blocks() {
    if (full()) return {};
    uint32_t final_block = 0;
    while (final_block == 0) {
      uint32_t type;
      if (!bits_.Take(1, &final_block) || !bits_.Take(2, &type)) {
        return Fail(InflateError::kTruncated);
      }
      if (type == 0) {
        TRY_STATUS(Stored());
      } else if (type == 1) {
        TRY_STATUS(Fixed());
      } else if (type == 2) {
        TRY_STATUS(Dynamic());
      } else {
        return Fail(InflateError::kBadBlockType);
      }
      if (full()) return {};
    }
    if (until_ == InflateUntil::kOutputFull) return Fail(InflateError::kTruncated);
    return {};
  }

  bool full() const { return until_ == InflateUntil::kOutputFull && written_ == capacity_; }
  uint64_t written() const { return written_; }
  BitReader& bits() { return bits_; }

 private:
  base::Status<InflateError> Stored() {
    bits_.AlignToByte();
    uint32_t len, nlen;
    if (!bits_.Take(16, &len) || !bits_.Take(16, &nlen)) return Fail(InflateError::kTruncated);
    if (len != (~nlen & 0xFFFF)) return Fail(InflateError::kBadStoredLength);
    bits_.Unbuffer();
    uint64_t n = len;
    if (n > bits_.left()) return Fail(InflateError::kTruncated);
    const uint64_t room = capacity_ - written_;
    if (n > room) {
      if (until_ == InflateUntil::kStreamEnd) return Fail(InflateError::kOutputFull);
      n = room;
    }
    const uint8_t* src = bits_.cursor();
    for (uint64_t i = 0; i < n; ++i) out_[written_ + i] = src[i];
    written_ += n;
    bits_.Skip(n);
    return {};
  }

  base::Status<InflateError> Fixed() {
    uint8_t lengths[kLiteralCodes + kDistanceCodes];
    uint32_t i = 0;
    for (; i < 144; ++i) lengths[i] = 8;
    for (; i < 256; ++i) lengths[i] = 9;
    for (; i < 280; ++i) lengths[i] = 7;
    for (; i < kLiteralCodes; ++i) lengths[i] = 8;
    for (uint32_t d = 0; d < kDistanceCodes; ++d) lengths[kLiteralCodes + d] = 5;
    // The fixed codes are complete by construction.
    Build(&literals_, lengths, kLiteralCodes, CodeKind::kLiterals);
    Build(&distances_, lengths + kLiteralCodes, kDistanceCodes, CodeKind::kDistances);
    return Codes();
  }

  base::Status<InflateError> Dynamic() {
    uint32_t hlit, hdist, hclen;
    if (!bits_.Take(5, &hlit) || !bits_.Take(5, &hdist) || !bits_.Take(4, &hclen)) {
      return Fail(InflateError::kTruncated);
    }
    hlit += 257;
    hdist += 1;
    hclen += 4;
    if (hlit > 286 || hdist > 30) return Fail(InflateError::kBadCodeLengths);
    uint8_t lengths[kLiteralCodes + kDistanceCodes] = {};
    for (uint32_t i = 0; i < hclen; ++i) {
      uint32_t v;
      if (!bits_.Take(3, &v)) return Fail(InflateError::kTruncated);
      lengths[kCodeLengthOrder[i]] = static_cast<uint8_t>(v);
    }
    if (!Build(&literals_, lengths, 19, CodeKind::kLengths)) {
      return Fail(InflateError::kBadCodeLengths);
    }
    uint8_t code_lengths[kLiteralCodes + kDistanceCodes] = {};
    uint32_t n = 0;
    while (n < hlit + hdist) {
      uint32_t symbol;
      TRY_STATUS(Decode(bits_, literals_, &symbol));
      if (symbol < 16) {
        code_lengths[n++] = static_cast<uint8_t>(symbol);
        continue;
      }
      uint32_t repeat, value = 0, extra;
      if (symbol == 16) {
        if (n == 0) return Fail(InflateError::kBadCodeLengths);
        value = code_lengths[n - 1];
        if (!bits_.Take(2, &extra)) return Fail(InflateError::kTruncated);
        repeat = 3 + extra;
      } else if (symbol == 17) {
        if (!bits_.Take(3, &extra)) return Fail(InflateError::kTruncated);
        repeat = 3 + extra;
      } else {
        if (!bits_.Take(7, &extra)) return Fail(InflateError::kTruncated);
        repeat = 11 + extra;
      }
      if (repeat > hlit + hdist - n) return Fail(InflateError::kBadCodeLengths);
      while (repeat-- > 0) code_lengths[n++] = static_cast<uint8_t>(value);
    }
    if (code_lengths[kEndOfBlock] == 0) return Fail(InflateError::kBadCodeLengths);
    if (!Build(&literals_, code_lengths, hlit, CodeKind::kLiterals) ||
        !Build(&distances_, code_lengths + hlit, hdist, CodeKind::kDistances)) {
      return Fail(InflateError::kBadCodeLengths);
    }
    return Codes();
  }

  // Literal/length and distance symbols up to the end of the block.
  base::Status<InflateError> Codes() {
    for (;;) {
      uint32_t symbol;
      TRY_STATUS(Decode(bits_, literals_, &symbol));
      if (symbol < 256) {
        if (written_ == capacity_) return Fail(InflateError::kOutputFull);
        out_[written_++] = static_cast<uint8_t>(symbol);
        if (full()) return {};
        continue;
      }
      if (symbol == kEndOfBlock) return {};
      symbol -= 257;
      if (symbol >= 29) return Fail(InflateError::kBadSymbol);
      uint32_t extra, length, dsym, distance;
      if (!bits_.Take(kLengthExtra[symbol], &extra)) return Fail(InflateError::kTruncated);
      length = kLengthBase[symbol] + extra;
      TRY_STATUS(Decode(bits_, distances_, &dsym));
      if (dsym >= 30) return Fail(InflateError::kBadSymbol);
      if (!bits_.Take(kDistanceExtra[dsym], &extra)) return Fail(InflateError::kTruncated);
      distance = kDistanceBase[dsym] + extra;
      if (distance > written_) return Fail(InflateError::kBadDistance);
      uint64_t n = length;
      const uint64_t room = capacity_ - written_;
      if (n > room) {
        if (until_ == InflateUntil::kStreamEnd) return Fail(InflateError::kOutputFull);
        n = room;
      }
      // Byte by byte: the source may overlap what this copy writes.
      uint8_t* dst = out_ + written_;
      const uint8_t* src = dst - distance;
      for (uint64_t i = 0; i < n; ++i) dst[i] = src[i];
      written_ += n;
      if (full()) return {};
    }
  }

  BitReader bits_;
  InflateUntil until_;
  uint8_t* out_;
  uint64_t capacity_;
  uint64_t written_ = 0;
  Huffman literals_;
  Huffman distances_;
};

uint32_t Adler32(const uint8_t* p, uint64_t n) {
  constexpr uint32_t kMod = 65521;
  uint32_t a = 1, b = 0;
  while (n > 0) {
    // 5552 bytes is the longest run whose sums cannot overflow 32 bits (RFC 1950 9.).
    const uint64_t chunk = n < 5552 ? n : 5552;
    for (uint64_t i = 0; i < chunk; ++i) {
      a += p[i];
      b += a;
    }
    a %= kMod;
    b %= kMod;
    p += chunk;
    n -= chunk;
  }
  return (b << 16) | a;
}

}  // namespace

base::Result<InflateResult, InflateError> Inflate(base::ByteView in, InflateWrapper wrapper,
                                                  InflateUntil until, uint8_t* out,
                                                  uint64_t capacity) {
  uint64_t start = 0;
  if (wrapper == InflateWrapper::kZlib) {
    // RFC 1950 2.2: CM 8 (deflate), CINFO <= 7 (window <= 32 KiB), FCHECK, no FDICT.
    if (in.size() < 2) return Fail(InflateError::kTruncated);
    const uint32_t cmf = in.data()[0], flg = in.data()[1];
    if ((cmf & 0x0F) != 8 || (cmf >> 4) > 7 || (cmf * 256 + flg) % 31 != 0 || (flg & 0x20) != 0) {
      return Fail(InflateError::kBadZlibHeader);
    }
    start = 2;
  }
  Decoder decoder(in.Sub(start, in.size() - start), until, out, capacity);
  TRY_STATUS(decoder.Blocks());
  InflateResult result;
  result.written = decoder.written();
  BitReader& bits = decoder.bits();
  if (decoder.full()) {
    result.consumed = start + bits.position() - bits.buffered_bytes();
    return result;
  }
  bits.AlignToByte();
  if (wrapper == InflateWrapper::kZlib) {
    uint32_t b3, b2, b1, b0;
    if (!bits.Take(8, &b3) || !bits.Take(8, &b2) || !bits.Take(8, &b1) || !bits.Take(8, &b0)) {
      return Fail(InflateError::kTruncated);
    }
    if (((b3 << 24) | (b2 << 16) | (b1 << 8) | b0) != Adler32(out, result.written)) {
      return Fail(InflateError::kBadChecksum);
    }
  }
  result.consumed = start + bits.position() - bits.buffered_bytes();
  return result;
}

}  // namespace instar::chain_read
