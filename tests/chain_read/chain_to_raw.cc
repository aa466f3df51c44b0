// chain_to_raw: writes the guest view of a backing chain of image files, as crates/chain_read
// reads it, as raw bytes (what `qemu-img convert -O raw` writes for the top image). The
// differential test compares the two; bench/chain_read_bench.sh times it.
//
//   chain_to_raw [--budget BYTES] [--chunk BYTES] [--allocated-above FIRST:LAST] OUT
//                FORMAT:FILE...      (top first; FORMAT is raw, qcow2 or vmdk)
//
// --allocated-above prints, instead of writing OUT, the runs Chain::Locate finds over layers
// [FIRST, LAST) as "offset length allocated layer" lines.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "crates/base/arena.h"
#include "crates/base/image_reader.h"
#include "crates/chain_read/chain.h"
#include "crates/chain_read/layer.h"

namespace {

using instar::chain_read::Chain;
using instar::chain_read::ImageFormat;
using instar::chain_read::Layer;

class File {
 public:
  File(const std::string& path, int flags) : fd_(open(path.c_str(), flags, 0644)) {}
  ~File() {
    if (fd_ >= 0) close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

bool PreadAll(void* context, uint64_t offset, uint64_t length, uint8_t* out) {
  const int fd = *static_cast<const int*>(context);
  while (length > 0) {
    const ssize_t n = pread(fd, out, length, static_cast<off_t>(offset));
    if (n <= 0) return false;
    out += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  return true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "chain_to_raw: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t budget = instar::chain_read::kDefaultLayerBudget;
  uint64_t chunk = 1u << 20;
  bool allocation = false;
  uint32_t first = 0, last = 0;
  int i = 1;
  for (; i + 1 < argc && std::strncmp(argv[i], "--", 2) == 0; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--budget") {
      budget = std::strtoull(argv[i + 1], nullptr, 0);
    } else if (flag == "--chunk") {
      chunk = std::strtoull(argv[i + 1], nullptr, 0);
    } else if (flag == "--allocated-above") {
      allocation = true;
      if (std::sscanf(argv[i + 1], "%u:%u", &first, &last) != 2) return Fail("bad FIRST:LAST");
    } else {
      return Fail("unknown flag " + flag);
    }
  }
  if (argc - i < 2 || chunk == 0) return Fail("usage: [flags] OUT FORMAT:FILE...");
  const std::string out_path = argv[i++];

  std::vector<std::unique_ptr<File>> files;
  std::vector<int> fds;
  fds.reserve(static_cast<size_t>(argc - i));
  std::vector<uint8_t> memory(64u << 20);
  instar::base::Arena arena(memory.data(), memory.size());
  std::vector<Layer*> layers;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t colon = arg.find(':');
    if (colon == std::string::npos) return Fail("expected FORMAT:FILE, got " + arg);
    const std::string format = arg.substr(0, colon), path = arg.substr(colon + 1);
    ImageFormat f;
    if (format == "raw") {
      f = ImageFormat::kRaw;
    } else if (format == "qcow2") {
      f = ImageFormat::kQcow2;
    } else if (format == "vmdk") {
      f = ImageFormat::kVmdk;
    } else {
      return Fail("unknown format " + format);
    }
    files.push_back(std::make_unique<File>(path, O_RDONLY));
    if (files.back()->fd() < 0) return Fail(path + ": " + std::strerror(errno));
    fds.push_back(files.back()->fd());
    const off_t size = lseek(fds.back(), 0, SEEK_END);
    instar::base::ImageReader reader{&fds.back(), PreadAll, static_cast<uint64_t>(size)};
    auto layer = Layer::Open(f, reader, arena, budget);
    if (!layer.ok()) {
      return Fail(path + ": open error " + std::to_string(static_cast<int>(layer.error().code)) +
                  " detail " + std::to_string(layer.error().detail));
    }
    layers.push_back(layer.value());
  }
  auto chain = Chain::Of(layers.data(), static_cast<uint32_t>(layers.size()));
  if (!chain.ok()) return Fail("too many layers");
  const uint64_t size = chain.value().virtual_size();

  if (allocation) {
    for (uint64_t pos = 0; pos < size;) {
      auto run = chain.value().Locate(first, last, pos, size - pos);
      if (!run.ok()) {
        return Fail("locate error " + std::to_string(static_cast<int>(run.error().code)) +
                    " detail " + std::to_string(run.error().detail));
      }
      std::printf("%llu %llu %d %u\n", static_cast<unsigned long long>(pos),
                  static_cast<unsigned long long>(run.value().extent.length),
                  run.value().layer != last ? 1 : 0, run.value().layer);
      pos += run.value().extent.length;
    }
    return 0;
  }

  File out(out_path, O_WRONLY | O_CREAT | O_TRUNC);
  if (out.fd() < 0) return Fail(out_path + ": " + std::strerror(errno));
  std::vector<uint8_t> buffer(chunk);
  for (uint64_t pos = 0; pos < size; pos += chunk) {
    const uint64_t n = size - pos < chunk ? size - pos : chunk;
    auto read = chain.value().Read(pos, n, buffer.data());
    if (!read.ok()) {
      return Fail("read error " + std::to_string(static_cast<int>(read.error().code)) +
                  " detail " + std::to_string(read.error().detail) + " at " +
                  std::to_string(pos));
    }
    // Zero chunks stay holes, as qemu-img convert leaves them.
    bool zero = true;
    for (uint64_t k = 0; k < n && zero; ++k) zero = buffer[k] == 0;
    if (!zero &&
        pwrite(out.fd(), buffer.data(), n, static_cast<off_t>(pos)) != static_cast<ssize_t>(n)) {
      return Fail(out_path + ": write failed");
    }
  }
  if (ftruncate(out.fd(), static_cast<off_t>(size)) != 0) return Fail(out_path + ": truncate failed");
  return 0;
}
