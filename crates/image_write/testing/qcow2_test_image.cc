#include "crates/image_write/testing/qcow2_test_image.h"

#include <cstring>
#include <map>

#include "crates/base/endian.h"
#include "crates/qcow2/entries.h"
#include "crates/qcow2/header.h"

namespace instar::image_write::testing {

void Put64(Bytes& b, uint64_t off, uint64_t v) {
  if (b.size() < off + 8) b.resize(off + 8);
  base::StoreBe64(b.data() + off, v);
}
void Put32(Bytes& b, uint64_t off, uint32_t v) {
  if (b.size() < off + 4) b.resize(off + 4);
  base::StoreBe32(b.data() + off, v);
}
uint64_t Get64(const Bytes& b, uint64_t off) {
  return off + 8 <= b.size() ? base::LoadBe64(b.data() + off) : 0;
}

Bytes BuildImage(const ImageSpec& spec) {
  const uint64_t cs = 1ull << spec.cluster_bits;
  Bytes img(cs, 0);
  const uint64_t l2_entries = cs / 8;
  const uint64_t l1_size = (spec.size + cs * l2_entries - 1) / (cs * l2_entries);
  const uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
  Put32(img, 0, qcow2::kMagic);
  Put32(img, 4, 3);
  Put32(img, 20, spec.cluster_bits);
  Put64(img, 24, spec.size);
  Put32(img, 36, static_cast<uint32_t>(l1_size));
  Put64(img, 40, 3 * cs);
  Put64(img, 48, cs);
  Put32(img, 56, 1);
  Put32(img, 96, spec.refcount_order);
  Put32(img, 100, 104);
  uint64_t next = 3 + l1_clusters;
  std::map<uint64_t, uint64_t> l2_of;  // L1 index -> L2 cluster
  for (uint64_t guest : spec.data_at) {
    const uint64_t gc = guest / cs, l1i = gc / l2_entries;
    if (!l2_of.count(l1i)) {
      l2_of[l1i] = next++;
      Put64(img, 3 * cs + 8 * l1i, (l2_of[l1i] * cs) | qcow2::kCopiedFlag);
    }
    const uint64_t data = next++;
    Put64(img, l2_of[l1i] * cs + 8 * (gc % l2_entries), (data * cs) | qcow2::kCopiedFlag);
  }
  img.resize(next * cs, 0);
  Put64(img, cs, 2 * cs);
  qcow2::Geometry g;
  g.cluster_size = cs;
  g.refcount_order = spec.refcount_order;
  for (uint64_t c = 0; c < next; ++c) qcow2::SetRefcount(img.data() + 2 * cs, spec.refcount_order, c, 1);
  return img;
}

Counts Check(const Bytes& img) {
  Counts out;
  const uint32_t cb = static_cast<uint32_t>(base::LoadBe32(img.data() + 20));
  const uint64_t cs = 1ull << cb;
  const uint32_t order = base::LoadBe32(img.data() + 96);
  const uint64_t per_block = (cs * 8) >> order;
  const uint64_t l1_size = base::LoadBe32(img.data() + 36);
  const uint64_t l1_off = Get64(img, 40);
  const uint64_t rt_off = Get64(img, 48);
  const uint64_t rt_clusters = base::LoadBe32(img.data() + 56);
  std::map<uint64_t, uint64_t> refs;
  refs[0]++;
  for (uint64_t c = 0; c < rt_clusters; ++c) refs[rt_off / cs + c]++;
  for (uint64_t i = 0; i < rt_clusters * cs / 8; ++i) {
    const uint64_t b = Get64(img, rt_off + 8 * i) & qcow2::kRefcountTableOffsetMask;
    if (b) refs[b / cs]++;
  }
  for (uint64_t c = 0; c < (l1_size * 8 + cs - 1) / cs; ++c) refs[l1_off / cs + c]++;
  for (uint64_t i = 0; i < l1_size; ++i) {
    const uint64_t l2 = Get64(img, l1_off + 8 * i) & qcow2::kOffsetMask;
    if (!l2) continue;
    refs[l2 / cs]++;
    for (uint64_t j = 0; j < cs / 8; ++j) {
      const uint64_t d = Get64(img, l2 + 8 * j) & qcow2::kOffsetMask;
      if (d) refs[d / cs]++;
    }
  }
  std::map<uint64_t, uint64_t> counted;
  for (uint64_t i = 0; i < rt_clusters * cs / 8; ++i) {
    const uint64_t b = Get64(img, rt_off + 8 * i) & qcow2::kRefcountTableOffsetMask;
    if (!b || b + cs > img.size()) continue;
    for (uint64_t k = 0; k < per_block; ++k) {
      const uint64_t r = qcow2::GetRefcount(img.data() + b, order, k);
      if (r) counted[i * per_block + k] = r;
    }
  }
  for (auto [c, n] : refs) {
    if (counted[c] < n) ++out.corruptions;
  }
  for (auto [c, n] : counted) {
    if (n > refs[c]) ++out.leaks;
  }
  return out;
}

bool ReadBytes(void* ctx, uint64_t off, uint64_t len, uint8_t* out) {
  const Bytes& b = *static_cast<const Bytes*>(ctx);
  if (off > b.size() || len > b.size() - off) return false;
  std::memcpy(out, b.data() + off, len);
  return true;
}

bool Record(void* ctx, const Step& s) {
  auto& steps = *static_cast<std::vector<Recorded>*>(ctx);
  Recorded r{s, {}};
  if (s.kind == StepKind::kWrite) r.bytes.assign(s.bytes, s.bytes + s.length);
  r.step.bytes = nullptr;
  steps.push_back(std::move(r));
  return true;
}

void Apply(Bytes& img, const Recorded& r) {
  const Step& s = r.step;
  if (s.kind == StepKind::kSetSize) {
    img.resize(s.length);
    return;
  }
  if (img.size() < s.offset + s.length) img.resize(s.offset + s.length, 0);
  switch (s.kind) {
    case StepKind::kWrite: std::memcpy(img.data() + s.offset, r.bytes.data(), s.length); break;
    case StepKind::kZero: std::memset(img.data() + s.offset, 0, s.length); break;
    case StepKind::kCopy: std::memmove(img.data() + s.offset, img.data() + s.source, s.length); break;
    case StepKind::kSetSize: break;
  }
}

}  // namespace instar::image_write::testing
