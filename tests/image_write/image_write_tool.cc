// Drives Qcow2Writer / VmdkWriter on a real image file for the shell tests: a seeded random
// sequence of write / zero / discard requests goes through the writer (its steps applied to
// the file with pwrite, in order) and the same sequence to a raw reference file. After each
// request the writer's Map must agree with what was asked. `--max-steps K` refuses every
// step after the K-th (a crash there); `--history FILE` records every content each cluster
// had during the sequence, and `verify` checks that an image (converted to raw) holds, per
// cluster, one of them.
//
//   image_write_tool run --format qcow2|vmdk --image IMG --reference RAW --seed S --ops N
//       [--max-steps K] [--grow BYTES] [--zero-grow] [--cache-bytes B] [--pending-frees F]
//       [--history FILE] [--flush-every M]
//   image_write_tool verify --history FILE --raw RAW
//
// Exit codes: 0 done, 2 interrupted by --max-steps, 1 anything else (message on stderr).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "crates/base/arena.h"
#include "crates/image_write/qcow2_writer.h"
#include "crates/image_write/vmdk_writer.h"

namespace {

using instar::image_write::ClusterMapping;
using instar::image_write::ClusterState;
using instar::image_write::ImageReader;
using instar::image_write::Qcow2Writer;
using instar::image_write::Qcow2WriterLimits;
using instar::image_write::Step;
using instar::image_write::StepKind;
using instar::image_write::StepSink;
using instar::image_write::VmdkWriter;
using instar::image_write::WriteError;

constexpr uint64_t kArenaBytes = 12u << 20;  // about the guest's scratch memory

// The image file: reads for the writer, steps applied in order, optionally cut short.
struct ImageFile {
  int fd = -1;
  uint64_t steps = 0;
  uint64_t max_steps = UINT64_MAX;
  bool interrupted = false;

  uint64_t Size() const {
    struct stat st {};
    return fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  static bool Read(void* self, uint64_t offset, uint64_t length, uint8_t* out) {
    auto* f = static_cast<ImageFile*>(self);
    if (offset > f->Size() || length > f->Size() - offset) return false;
    return pread(f->fd, out, length, static_cast<off_t>(offset)) == static_cast<ssize_t>(length);
  }
  static bool Apply(void* self, const Step& step) {
    auto* f = static_cast<ImageFile*>(self);
    if (f->steps == f->max_steps) {
      f->interrupted = true;
      return false;
    }
    ++f->steps;
    switch (step.kind) {
      case StepKind::kWrite:
        return pwrite(f->fd, step.bytes, step.length, static_cast<off_t>(step.offset)) ==
               static_cast<ssize_t>(step.length);
      case StepKind::kZero: {
        std::vector<uint8_t> zeros(step.length, 0);
        return pwrite(f->fd, zeros.data(), zeros.size(), static_cast<off_t>(step.offset)) ==
               static_cast<ssize_t>(zeros.size());
      }
      case StepKind::kCopy: {
        std::vector<uint8_t> buffer(step.length);
        return pread(f->fd, buffer.data(), buffer.size(), static_cast<off_t>(step.source)) ==
                   static_cast<ssize_t>(buffer.size()) &&
               pwrite(f->fd, buffer.data(), buffer.size(), static_cast<off_t>(step.offset)) ==
                   static_cast<ssize_t>(buffer.size());
      }
      case StepKind::kSetSize:
        return ftruncate(f->fd, static_cast<off_t>(step.length)) == 0;
    }
    return false;
  }
};

struct Rng {
  uint64_t state;
  uint64_t Next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
};

uint64_t Hash(const uint8_t* p, uint64_t n) {
  uint64_t h = 1469598103934665603ull;
  for (uint64_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// The two writers behind one interface, for the driver below.
struct Writer {
  Qcow2Writer* qcow2 = nullptr;
  VmdkWriter* vmdk = nullptr;

  uint64_t unit() const { return qcow2 ? qcow2->cluster_size() : vmdk->grain_size(); }
  uint64_t units() const { return qcow2 ? qcow2->guest_clusters() : vmdk->guest_grains(); }
  uint64_t size() const { return qcow2 ? qcow2->virtual_size() : vmdk->virtual_size(); }
  instar::base::Status<WriteError> Write(uint64_t f, uint64_t n, const uint8_t* d) {
    return qcow2 ? qcow2->WriteClusters(f, n, d) : vmdk->WriteGrains(f, n, d);
  }
  instar::base::Status<WriteError> Zero(uint64_t f, uint64_t n) {
    return qcow2 ? qcow2->ZeroClusters(f, n) : vmdk->ZeroGrains(f, n);
  }
  instar::base::Status<WriteError> Discard(uint64_t f, uint64_t n) {
    return qcow2 ? qcow2->DiscardClusters(f, n) : vmdk->DiscardGrains(f, n);
  }
  instar::base::Status<WriteError> Flush() { return qcow2 ? qcow2->Flush() : vmdk->Flush(); }
  instar::base::Result<ClusterMapping, WriteError> Map(uint64_t c) {
    return qcow2 ? qcow2->Map(c) : vmdk->Map(c);
  }
};

std::map<std::string, std::string> Flags(int argc, char** argv, int from) {
  std::map<std::string, std::string> flags;
  for (int i = from; i < argc; ++i) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0) continue;
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      flags[key] = argv[++i];
    } else {
      flags[key] = "1";
    }
  }
  return flags;
}

int Failed(const char* what, instar::base::Error<WriteError> e, const ImageFile& file) {
  if (file.interrupted) {
    std::printf("interrupted after %llu steps\n", static_cast<unsigned long long>(file.steps));
    return 2;
  }
  std::fprintf(stderr, "%s: error %d detail %llu\n", what, static_cast<int>(e.code), e.detail);
  return 1;
}

int Run(std::map<std::string, std::string>& flags) {
  const std::string format = flags["--format"];
  ImageFile file;
  file.fd = open(flags["--image"].c_str(), O_RDWR);
  const int reference = open(flags["--reference"].c_str(), O_RDWR);
  if (file.fd < 0 || reference < 0) {
    std::fprintf(stderr, "cannot open the image or the reference\n");
    return 1;
  }
  if (flags.count("--max-steps")) file.max_steps = std::stoull(flags["--max-steps"]);
  const ImageReader reader{&file, &ImageFile::Read, file.Size()};
  const StepSink sink{&file, &ImageFile::Apply};
  std::vector<uint8_t> memory(kArenaBytes);
  instar::base::Arena arena(memory.data(), memory.size());
  Writer w;
  const uint64_t cache_bytes = flags.count("--cache-bytes") ? std::stoull(flags["--cache-bytes"]) : 0;
  if (format == "qcow2") {
    Qcow2WriterLimits limits;
    limits.cache_bytes = cache_bytes;
    if (flags.count("--pending-frees")) limits.pending_frees = std::stoul(flags["--pending-frees"]);
    auto opened = Qcow2Writer::Open(reader, sink, arena, limits);
    if (!opened.ok()) return Failed("open", opened.error(), file);
    w.qcow2 = opened.value();
  } else {
    auto opened = VmdkWriter::Open(reader, sink, arena, cache_bytes);
    if (!opened.ok()) return Failed("open", opened.error(), file);
    w.vmdk = opened.value();
  }
  if (flags.count("--grow")) {
    const uint64_t size = std::stoull(flags["--grow"]);
    auto grown = w.qcow2 ? w.qcow2->Grow(size, flags.count("--zero-grow") != 0) : w.vmdk->Grow(size);
    if (!grown.ok()) return Failed("grow", grown.error(), file);
    if (ftruncate(reference, static_cast<off_t>(size)) != 0) return 1;
  }

  const uint64_t unit = w.unit(), units = w.units(), size = w.size();
  std::vector<std::vector<uint64_t>> history;
  const bool want_history = flags.count("--history") != 0;
  std::vector<uint8_t> cluster(unit);
  auto content_hash = [&](uint64_t c) {
    std::fill(cluster.begin(), cluster.end(), 0);
    const uint64_t n = std::min(unit, size - c * unit);
    if (pread(reference, cluster.data(), n, static_cast<off_t>(c * unit)) < 0) return uint64_t{0};
    return Hash(cluster.data(), unit);
  };
  if (want_history) {
    history.resize(units);
    for (uint64_t c = 0; c < units; ++c) history[c].push_back(content_hash(c));
  }

  Rng rng{std::stoull(flags["--seed"]) * 0x9E3779B97F4A7C15ull + 1};
  const uint64_t ops = std::stoull(flags["--ops"]);
  const uint64_t flush_every = flags.count("--flush-every") ? std::stoull(flags["--flush-every"]) : 0;
  for (uint64_t op = 0; op < ops; ++op) {
    const uint64_t kind = rng.Below(100);
    const uint64_t first = rng.Below(units);
    const uint64_t longest = rng.Below(8) == 0 ? 2048 : 32;
    const uint64_t count = 1 + rng.Below(std::min(longest, units - first));
    std::vector<uint8_t> data;
    instar::base::Status<WriteError> done;
    ClusterState expect;
    if (kind < 50) {
      data.resize(count * unit);
      for (uint64_t c = 0; c < count; ++c) {
        if (rng.Below(10) == 0) continue;  // an all-zero cluster now and then
        Rng fill{rng.Next() | 1};
        for (uint64_t i = 0; i < unit; i += 8) {
          const uint64_t v = fill.Next();
          std::memcpy(&data[c * unit + i], &v, std::min<uint64_t>(8, unit - i));
        }
      }
      done = w.Write(first, count, data.data());
      expect = ClusterState::kData;
    } else if (kind < 75) {
      data.assign(count * unit, 0);
      done = w.Zero(first, count);
      const bool flags_zero = w.qcow2 ? w.qcow2->version() >= 3 : true;
      expect = flags_zero ? ClusterState::kZero : ClusterState::kData;
    } else {
      data.assign(count * unit, 0);
      done = w.Discard(first, count);
      expect = ClusterState::kUnallocated;
    }
    if (!done.ok()) return Failed("request", done.error(), file);
    // The reference gets the same bytes, cut at the virtual size.
    const uint64_t bytes = std::min(count * unit, size - first * unit);
    if (pwrite(reference, data.data(), bytes, static_cast<off_t>(first * unit)) !=
        static_cast<ssize_t>(bytes)) {
      return 1;
    }
    for (uint64_t c = first; c < first + count; ++c) {
      auto m = w.Map(c);
      if (!m.ok()) return Failed("map", m.error(), file);
      const ClusterState got = m.value().state;
      // A vmdk without the zeroed-grain flag writes zeros instead.
      const bool ok = got == expect || (w.vmdk && expect == ClusterState::kZero && got == ClusterState::kData);
      if (!ok) {
        std::fprintf(stderr, "op %llu: cluster %llu maps to state %d, wanted %d\n",
                     static_cast<unsigned long long>(op), static_cast<unsigned long long>(c),
                     static_cast<int>(got), static_cast<int>(expect));
        return 1;
      }
      if (want_history) {
        const uint64_t h = content_hash(c);
        if (history[c].back() != h) history[c].push_back(h);
      }
    }
    if (flush_every != 0 && (op + 1) % flush_every == 0) {
      auto flushed = w.Flush();
      if (!flushed.ok()) return Failed("flush", flushed.error(), file);
    }
  }
  auto flushed = w.Flush();
  if (!flushed.ok()) return Failed("flush", flushed.error(), file);
  if (want_history) {
    std::ofstream out(flags["--history"]);
    out << unit << " " << size << "\n";
    for (uint64_t c = 0; c < units; ++c) {
      for (uint64_t h : history[c]) out << h << " ";
      out << "\n";
    }
  }
  if (w.qcow2) {
    const auto& s = w.qcow2->stats();
    std::printf("steps=%llu data_steps=%llu allocated=%llu freed=%llu l2_writes=%llu flushes=%llu\n",
                static_cast<unsigned long long>(file.steps),
                static_cast<unsigned long long>(s.data_steps),
                static_cast<unsigned long long>(s.clusters_allocated),
                static_cast<unsigned long long>(s.clusters_freed),
                static_cast<unsigned long long>(s.l2_writes),
                static_cast<unsigned long long>(s.flushes));
  } else {
    const auto& s = w.vmdk->stats();
    std::printf("steps=%llu data_steps=%llu grains=%llu tables=%llu flushes=%llu\n",
                static_cast<unsigned long long>(file.steps),
                static_cast<unsigned long long>(s.data_steps),
                static_cast<unsigned long long>(s.grains_allocated),
                static_cast<unsigned long long>(s.tables_allocated),
                static_cast<unsigned long long>(s.flushes));
  }
  close(reference);
  close(file.fd);
  return 0;
}

int Verify(std::map<std::string, std::string>& flags) {
  std::ifstream in(flags["--history"]);
  uint64_t unit = 0, size = 0;
  in >> unit >> size;
  std::string line;
  std::getline(in, line);
  const int raw = open(flags["--raw"].c_str(), O_RDONLY);
  if (raw < 0 || unit == 0) return 1;
  std::vector<uint8_t> cluster(unit);
  int bad = 0;
  for (uint64_t c = 0; std::getline(in, line); ++c) {
    std::istringstream hashes(line);
    std::fill(cluster.begin(), cluster.end(), 0);
    const uint64_t n = std::min(unit, size - c * unit);
    if (pread(raw, cluster.data(), n, static_cast<off_t>(c * unit)) < 0) return 1;
    const uint64_t h = Hash(cluster.data(), unit);
    bool found = false;
    for (uint64_t want; hashes >> want;) found = found || want == h;
    if (!found && ++bad <= 5) {
      std::fprintf(stderr, "cluster %llu holds content it never had\n",
                   static_cast<unsigned long long>(c));
    }
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 1;
  auto flags = Flags(argc, argv, 2);
  const std::string mode = argv[1];
  if (mode == "run") return Run(flags);
  if (mode == "verify") return Verify(flags);
  return 1;
}
