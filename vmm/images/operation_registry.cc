#include "vmm/images/operation_registry.h"

#include "ops/check/check_image.h"
#include "ops/commit/commit_image.h"
#include "ops/info/info_image.h"
#include "ops/rebase/rebase_image.h"
#include "ops/resize/resize_image.h"

namespace instar::vmm {
namespace {

const RegisteredOperation kOperations[] = {
    {"info", &images::info},
    {"check", &images::check},
    {"resize", &images::resize},
    {"rebase", &images::rebase},
    {"commit", &images::commit},
};

}  // namespace

std::span<const RegisteredOperation> Operations() { return kOperations; }

const EmbeddedImage* FindOperation(std::string_view name) {
  for (const RegisteredOperation& op : kOperations) {
    if (op.name == name) return op.image;
  }
  return nullptr;
}

}  // namespace instar::vmm
