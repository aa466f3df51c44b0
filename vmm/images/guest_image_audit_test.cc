// Size audit of every guest binary the host carries: each verifies (hash, header, ABI version)
// and fits its region with .bss included. Prints the sizes for the record.
#include <cstdio>
#include <initializer_list>
#include <cstring>
#include <vector>

#include "abi/memory_map.h"
#include "gtest/gtest.h"
#include "vmm/images/embedded_image.h"
#include "vmm/images/operation_registry.h"
#include "vmm/runtime/runtime_image.h"
#include "vmm/runtime/runtime_process_image.h"

namespace instar::vmm {
namespace {

TEST(GuestImageAudit, EveryImageVerifiesAndFitsItsBudget) {
  for (const EmbeddedImage* image : {&images::runtime, &images::runtime_process}) {
    auto runtime = VerifyImage(*image, abi::GuestImageKind::kRuntime);
    ASSERT_TRUE(runtime.ok()) << image->name << ": " << runtime.status().message();
    std::printf("%-16s file %7zu B  load %7llu B  budget %7llu B\n", image->name, image->size,
                static_cast<unsigned long long>(LoadExtent(*runtime)),
                static_cast<unsigned long long>(abi::kRuntime.size));
    EXPECT_LE(LoadExtent(*runtime), abi::kRuntime.size);
  }
  ASSERT_FALSE(Operations().empty());
  for (const RegisteredOperation& op : Operations()) {
    auto v = VerifyImage(*op.image, abi::GuestImageKind::kOperation);
    ASSERT_TRUE(v.ok()) << op.name << ": " << v.status().message();
    std::printf("%-16s file %7zu B  load %7llu B  budget %7llu B\n",
                std::string(op.name).c_str(), op.image->size,
                static_cast<unsigned long long>(LoadExtent(*v)),
                static_cast<unsigned long long>(abi::kOperationMaxSize));
    EXPECT_LT(LoadExtent(*v), abi::kOperationMaxSize) << op.name;
    EXPECT_EQ(FindOperation(op.name), op.image);
  }
  EXPECT_EQ(FindOperation("no-such-op"), nullptr);
}

TEST(GuestImageAudit, TamperedImagesAreRefused) {
  const EmbeddedImage& good = *Operations()[0].image;
  std::vector<uint8_t> bytes(good.bytes, good.bytes + good.size);
  bytes[bytes.size() / 2] ^= 1;
  EmbeddedImage tampered{"tampered", bytes.data(), bytes.size(), good.sha256};
  EXPECT_FALSE(VerifyImage(tampered, abi::GuestImageKind::kOperation).ok());
  // Right bytes, wrong kind.
  EXPECT_FALSE(VerifyImage(good, abi::GuestImageKind::kRuntime).ok());
  // A header whose load extent leaves the region, re-hashed so only the header check stops it.
  bytes.assign(good.bytes, good.bytes + good.size);
  abi::GuestImageHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  h.load_end = abi::kOperation.end() + 4096;
  std::memcpy(bytes.data(), &h, sizeof h);
  EmbeddedImage oversized{"oversized", bytes.data(), bytes.size(),
                          Sha256(bytes.data(), bytes.size())};
  auto r = VerifyImage(oversized, abi::GuestImageKind::kOperation);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("load extent"), std::string::npos);
}

}  // namespace
}  // namespace instar::vmm
