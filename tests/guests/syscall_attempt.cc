// Hostile guest: tries the system call InfoConfig::flags selects, straight from guest code:
// 1 open("/etc/passwd"), 2 socket, 3 fork, 4 write to stdout, 5 read from fd 3, 6 mmap,
// 7 kill(1). The process sandbox must kill it for the attempt; under KVM the instruction
// never reaches the host kernel at all (it faults inside the guest).
#include <stdint.h>

#include "abi/call_table.h"
#include "abi/info.h"
#include "crates/freestanding/guest_image.h"

namespace {

long Syscall6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}

const char kPath[] = "/etc/passwd";
const char kText[] = "escaped\n";

}  // namespace

extern "C" __attribute__((section(".text.instar_entry"))) int instar_entry(
    const instar::abi::CallTable* t) {
  const uint32_t which =
      static_cast<const instar::abi::InfoConfig*>(t->get_operation_config(nullptr))->flags;
  long r = 0;
  switch (which) {
    case 1: r = Syscall6(2, reinterpret_cast<long>(kPath), 0, 0, 0, 0, 0); break;     // open
    case 2: r = Syscall6(41, 2, 1, 0, 0, 0, 0); break;                                // socket
    case 3: r = Syscall6(57, 0, 0, 0, 0, 0, 0); break;                                // fork
    case 4: r = Syscall6(1, 1, reinterpret_cast<long>(kText), 8, 0, 0, 0); break;    // write
    case 5: r = Syscall6(0, 3, reinterpret_cast<long>(kText), 1, 0, 0, 0); break;    // read
    case 6: r = Syscall6(9, 0, 4096, 3, 0x22, -1, 0); break;                          // mmap
    case 7: r = Syscall6(62, 1, 9, 0, 0, 0, 0); break;                                // kill
    default: break;
  }
  // Reaching here means the call returned: report what it gave back.
  t->send_error(which, static_cast<uint64_t>(r));
  t->send_complete(0);
  return 0;
}

INSTAR_GUEST_IMAGE(instar::abi::GuestImageKind::kOperation, instar::abi::kOperationLoadAddr,
                   instar_entry);
