#include "crates/chain_read/testing/test_images.h"

#include <zlib.h>

#include <cstring>

namespace instar::chain_read::testing {

void PutBe32(Bytes& b, uint64_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void PutBe64(Bytes& b, uint64_t at, uint64_t v) {
  PutBe32(b, at, static_cast<uint32_t>(v >> 32));
  PutBe32(b, at + 4, static_cast<uint32_t>(v));
}
void PutLe32(Bytes& b, uint64_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutLe64(Bytes& b, uint64_t at, uint64_t v) {
  PutLe32(b, at, static_cast<uint32_t>(v));
  PutLe32(b, at + 4, static_cast<uint32_t>(v >> 32));
}

namespace {

bool ReadVector(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  const Bytes& b = *static_cast<const Bytes*>(context);
  if (offset > b.size() || length > b.size() - offset) return false;
  std::memcpy(out, b.data() + offset, length);
  return true;
}

Bytes Deflate(const Bytes& in, int window_bits) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&z, in.size()) + 16);
  z.next_in = const_cast<uint8_t*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

base::ImageReader ReaderOf(const Bytes& bytes) {
  return base::ImageReader{const_cast<Bytes*>(&bytes), ReadVector, bytes.size()};
}

Bytes DeflateRaw(const Bytes& in) { return Deflate(in, -12); }
Bytes DeflateZlib(const Bytes& in) { return Deflate(in, 15); }

Qcow2Image::Qcow2Image(uint32_t cluster_bits, uint64_t size, bool extended_l2)
    : cluster_bits_(cluster_bits), extended_(extended_l2) {
  bytes.assign(4 * cluster(), 0);
  const uint64_t l1_entries = (size + per_l2() - 1) / per_l2();
  PutBe32(bytes, 0, 0x514649FB);
  PutBe32(bytes, 4, 3);
  PutBe32(bytes, 20, cluster_bits);
  PutBe64(bytes, 24, size);
  PutBe32(bytes, 36, static_cast<uint32_t>(l1_entries));
  PutBe64(bytes, 40, l1_offset());
  PutBe64(bytes, 48, cluster());
  PutBe32(bytes, 56, 1);
  PutBe64(bytes, 72, extended_l2 ? 1u << 4 : 0);
  PutBe32(bytes, 96, 4);
  PutBe32(bytes, 100, 112);
  PutBe64(bytes, cluster(), 2 * cluster());
}

uint64_t Qcow2Image::per_l2() const {
  return cluster() / (extended_ ? 16 : 8) * cluster();
}

uint64_t Qcow2Image::Alloc() {
  const uint64_t at = (bytes.size() + cluster() - 1) / cluster() * cluster();
  bytes.resize(at + cluster(), 0);
  return at;
}

uint64_t Qcow2Image::AllocData(uint64_t clusters, uint8_t byte) {
  const uint64_t at = (bytes.size() + cluster() - 1) / cluster() * cluster();
  bytes.resize(at, 0);
  bytes.resize(at + clusters * cluster(), byte);
  return at;
}

void Qcow2Image::SetL2(uint64_t l2, uint64_t index, uint64_t raw, uint64_t bitmap) {
  const uint64_t entry = extended_ ? 16 : 8;
  PutBe64(bytes, l2 + index * entry, raw);
  if (extended_) PutBe64(bytes, l2 + index * entry + 8, bitmap);
}

void Qcow2Image::Map(uint64_t guest_cluster, uint64_t raw, uint64_t bitmap) {
  const uint64_t per_table = per_l2() / cluster();
  const uint64_t l1_index = guest_cluster / per_table;
  const uint64_t l1_at = l1_offset() + l1_index * 8;
  uint64_t l2 = 0;
  for (int i = 0; i < 8; ++i) l2 = (l2 << 8) | bytes[l1_at + i];
  l2 &= 0x00FFFFFFFFFFFE00ull;
  if (l2 == 0) {
    l2 = Alloc();
    SetL1(l1_index, l2 | (1ull << 63));
  }
  SetL2(l2, guest_cluster % per_table, raw, bitmap);
}

void Qcow2Image::MapCompressed(uint64_t guest_cluster, const Bytes& data) {
  const Bytes z = DeflateRaw(data);
  Map(guest_cluster, 0);  // its L2 table first
  // Start mid-sector, as qemu packs compressed clusters.
  const uint64_t at = bytes.size() + 100;
  bytes.resize(at + z.size(), 0);
  std::memcpy(bytes.data() + at, z.data(), z.size());
  const uint32_t x = 62 - (cluster_bits_ - 8);
  const uint64_t sectors = (at + z.size() - 1) / 512 - at / 512;  // additional sectors
  Map(guest_cluster, (1ull << 62) | (sectors << x) | at);
  bytes.resize((bytes.size() + 511) / 512 * 512, 0);
}

VmdkImage::VmdkImage(uint64_t capacity_sectors, uint32_t gtes, uint32_t flags, uint16_t compress)
    : gtes_(gtes) {
  const uint64_t grain_sectors = kGrain / 512;
  gd_entries_ = (capacity_sectors + grain_sectors * gtes - 1) / (grain_sectors * gtes);
  const uint64_t gd_sectors = (gd_entries_ * 4 + 511) / 512;
  bytes.assign(512 * (1 + gd_sectors), 0);
  PutLe32(bytes, 0, 0x564D444B);
  PutLe32(bytes, 4, 1);
  PutLe32(bytes, 8, flags);
  PutLe64(bytes, 12, capacity_sectors);
  PutLe64(bytes, 20, grain_sectors);
  PutLe32(bytes, 44, gtes);
  PutLe64(bytes, 56, 1);
  PutLe64(bytes, 64, 1 + gd_sectors);  // overhead
  bytes[77] = static_cast<uint8_t>(compress);
  bytes[78] = static_cast<uint8_t>(compress >> 8);
}

uint64_t VmdkImage::AppendSectors(uint64_t sectors) {
  const uint64_t at = bytes.size() / 512;
  bytes.resize(bytes.size() + sectors * 512, 0);
  return at;
}

void VmdkImage::SetGrain(uint64_t grain, uint32_t sector) {
  const uint64_t gd_at = 512 + grain / gtes_ * 4;
  uint32_t gt = bytes[gd_at] | bytes[gd_at + 1] << 8 | bytes[gd_at + 2] << 16 |
                static_cast<uint32_t>(bytes[gd_at + 3]) << 24;
  if (gt == 0) {
    gt = static_cast<uint32_t>(AppendSectors((gtes_ * 4 + 511) / 512));
    PutLe32(bytes, gd_at, gt);
  }
  PutLe32(bytes, uint64_t{gt} * 512 + grain % gtes_ * 4, sector);
}

void VmdkImage::AddGrain(uint64_t grain, uint8_t byte) {
  const uint64_t sector = AppendSectors(kGrain / 512);
  std::memset(bytes.data() + sector * 512, byte, kGrain);
  SetGrain(grain, static_cast<uint32_t>(sector));
}

void VmdkImage::AddCompressedGrain(uint64_t grain, const Bytes& data, bool marker) {
  const Bytes z = DeflateZlib(data);
  const uint64_t header = marker ? 12 : 0;
  const uint64_t sector = AppendSectors((header + z.size() + 511) / 512);
  if (marker) {
    PutLe64(bytes, sector * 512, grain * (kGrain / 512));
    PutLe32(bytes, sector * 512 + 8, static_cast<uint32_t>(z.size()));
  }
  std::memcpy(bytes.data() + sector * 512 + header, z.data(), z.size());
  SetGrain(grain, static_cast<uint32_t>(sector));
}

void VmdkImage::MoveHeaderToFooter() {
  const Bytes header(bytes.begin(), bytes.begin() + 512);
  PutLe64(bytes, 56, ~0ull);
  const uint64_t footer = AppendSectors(3) * 512;
  PutLe32(bytes, footer + 12, 3);  // footer marker
  std::memcpy(bytes.data() + footer + 512, header.data(), 512);
  // The end-of-stream marker is all zeros.
}

}  // namespace instar::chain_read::testing
