// The process backend's loader: a static, libc-free executable the supervisor runs (from an
// in-memory copy) for every request. It maps the guest RAM memfd at the guest addresses, drops
// everything it does not need, confines itself with seccomp to the doorbell's two system
// calls, and jumps to the runtime entry at CPL3 like the KVM backend's vCPU.
//
// Inputs, set up by the supervisor: fd 3 guest RAM (memfd), fd 4 doorbell pipe (write end),
// fd 5 reply pipe (read end); fds 0-2 on /dev/null; empty argv and environment.
#include <asm/unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/guest_image.h"
#include "abi/memory_map.h"
#include "abi/transport.h"

namespace {

using instar::abi::kProcessDoorbellFd;
using instar::abi::kProcessRamFd;
using instar::abi::kProcessReplyFd;

long Syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
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

[[noreturn]] void Die(int code) {
  for (;;) Syscall(__NR_exit_group, code);
}

// Kernel ABI structures (x86-64), declared here because there is no libc.
struct KernelSigaction {
  void (*handler)(int, void*, void*);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};
struct KernelStack {
  void* sp;
  int flags;
  size_t size;
};
struct Rlimit {
  uint64_t cur, max;
};
// x86-64 signal delivery requires SA_RESTORER; ours is never used (the handler exits).
constexpr unsigned long kSaSiginfo = 4, kSaOnstack = 0x08000000, kSaRestorer = 0x04000000;
constexpr int kSigill = 4, kSigtrap = 5, kSigbus = 7, kSigfpe = 8, kSigsegv = 11;
// Offsets into the kernel's ucontext: gregs start after uc_flags, uc_link and uc_stack.
constexpr size_t kGregsOffset = 40;
constexpr int kRegErr = 19, kRegTrapno = 20, kRegRip = 16, kRegCr2 = 22;

alignas(16) uint8_t g_signal_stack[64 * 1024];

void NeverReturns() { Die(125); }

// Reports a CPU exception the way the KVM backend's ring-0 stub does: vector, error code, RIP,
// CR2, straight from the kernel's signal frame; then the process ends.
void OnFault(int signal, void* info, void* context) {
  const auto* gregs = reinterpret_cast<const uint64_t*>(static_cast<uint8_t*>(context) +
                                                        kGregsOffset);
  const int code = *reinterpret_cast<const int*>(static_cast<uint8_t*>(info) + 8);
  uint64_t report[9] = {instar::abi::kProcessFaultWord,
                        gregs[kRegTrapno],
                        gregs[kRegErr],
                        gregs[kRegRip],
                        gregs[kRegCr2],
                        static_cast<uint64_t>(signal),
                        static_cast<uint64_t>(code),
                        0,
                        0};
  Syscall(__NR_write, kProcessDoorbellFd, reinterpret_cast<long>(report), sizeof report);
  Die(128 + signal);
}

// Allows read(kProcessReplyFd), write(kProcessDoorbellFd), exit and exit_group; kills the
// process on anything else (including another architecture's system call numbers).
const sock_filter kFilter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_read, 0, 4),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kProcessReplyFd, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 4),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kProcessDoorbellFd, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
};

}  // namespace

extern "C" [[noreturn]] void LoaderMain() {
  // 1. Nothing but our three descriptors (and /dev/null on 0-2) survives.
  if (Syscall(__NR_close_range, kProcessReplyFd + 1, ~0u, 0) != 0) {
    for (int fd = kProcessReplyFd + 1; fd < 4096; ++fd) Syscall(__NR_close, fd);
  }
  // 2. Guest RAM at the guest addresses: exactly the user regions, gaps left unmapped so a
  // stray pointer faults as it does under the KVM page tables.
  constexpr long kProt = 0x1 | 0x2 | 0x4;             // read, write, exec
  constexpr long kFlags = 0x01 | 0x100000;            // MAP_SHARED | MAP_FIXED_NOREPLACE
  for (const instar::abi::Region& r : instar::abi::kUserRegions) {
    const long got = Syscall(__NR_mmap, static_cast<long>(r.base), static_cast<long>(r.size),
                             kProt, kFlags, kProcessRamFd, static_cast<long>(r.base));
    if (got != static_cast<long>(r.base)) Die(120);
  }
  Syscall(__NR_close, kProcessRamFd);

  // 3. Faults are reported, on a stack of their own (the guest's may be what overflowed).
  KernelStack stack{g_signal_stack, 0, sizeof g_signal_stack};
  if (Syscall(__NR_sigaltstack, reinterpret_cast<long>(&stack), 0) != 0) Die(121);
  KernelSigaction action{OnFault, kSaSiginfo | kSaOnstack | kSaRestorer, NeverReturns, ~0ull};
  const int kFaultSignals[] = {kSigill, kSigtrap, kSigbus, kSigfpe, kSigsegv};
  for (int sig : kFaultSignals) {
    if (Syscall(__NR_rt_sigaction, sig, reinterpret_cast<long>(&action), 0, 8) != 0) Die(122);
  }

  // 4. Limits, namespaces where the kernel allows them, no privilege gain, not dumpable.
  const Rlimit zero{0, 0};
  Syscall(__NR_setrlimit, 4 /* RLIMIT_CORE */, reinterpret_cast<long>(&zero));
  Syscall(__NR_setrlimit, 1 /* RLIMIT_FSIZE */, reinterpret_cast<long>(&zero));
  Syscall(__NR_setrlimit, 6 /* RLIMIT_NPROC */, reinterpret_cast<long>(&zero));
  const Rlimit files{kProcessReplyFd + 1, kProcessReplyFd + 1};
  Syscall(__NR_setrlimit, 7 /* RLIMIT_NOFILE */, reinterpret_cast<long>(&files));
  constexpr long kNamespaces = 0x00020000 | 0x08000000 | 0x04000000 | 0x40000000;  // NS IPC UTS NET
  Syscall(__NR_unshare, kNamespaces);
  if (Syscall(__NR_prctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0) != 0) Die(123);
  Syscall(__NR_prctl, 4 /* PR_SET_DUMPABLE */, 0, 0, 0, 0);

  // 5. Seccomp: from here on only the doorbell works.
  const sock_fprog program{static_cast<unsigned short>(sizeof kFilter / sizeof kFilter[0]),
                           const_cast<sock_filter*>(kFilter)};
  if (Syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, reinterpret_cast<long>(&program)) != 0) {
    Die(124);
  }

  // 6. Into the runtime, on the guest stack, as if called.
  const auto* runtime =
      reinterpret_cast<const instar::abi::GuestImageHeader*>(instar::abi::kRuntime.base);
  asm volatile("mov %0, %%rsp\n\tjmp *%1"
               :
               : "r"(instar::abi::kStackTop - 8), "r"(runtime->entry)
               : "memory");
  __builtin_unreachable();
}

// The kernel enters here with the initial process stack; align it and go.
asm(R"(
  .section .text.loader_entry, "ax"
  .globl _start
_start:
  and $-16, %rsp
  call LoaderMain
  ud2
)");
