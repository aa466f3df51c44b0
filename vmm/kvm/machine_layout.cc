#include "vmm/kvm/machine_layout.h"

#include <array>
#include <cstring>

#include "abi/memory_map.h"

namespace instar::vmm {
namespace {

constexpr uint64_t kPtePresent = 1u << 0;
constexpr uint64_t kPteWritable = 1u << 1;
constexpr uint64_t kPteUser = 1u << 2;
constexpr uint64_t kPteLarge = 1u << 7;
constexpr uint64_t kLargePage = 2u << 20;
constexpr uint64_t kEntriesPerTable = 512;

constexpr uint64_t kCr0 = 0x80050033;  // PE MP ET NE WP AM PG
constexpr uint64_t kCr4 = 0x620;       // PAE OSFXSR OSXMMEXCPT
constexpr uint64_t kEfer = 0x501;      // SCE LME LMA

enum class PageKind { kAbsent, kSupervisor, kUser };

PageKind KindOf(uint64_t addr) {
  for (const abi::Region& r : abi::kUserRegions) {
    if (addr >= r.base && addr < r.end()) return PageKind::kUser;
  }
  if (addr >= abi::kDoorbell.base && addr < abi::kDoorbell.end()) return PageKind::kUser;
  for (const abi::Region& r : abi::kSupervisorRegions) {
    if (addr >= r.base && addr < r.end()) return PageKind::kSupervisor;
  }
  return PageKind::kAbsent;
}

// True when some mapped region overlaps [base, base + size): most 2 MiB chunks are empty and
// this keeps the page-table build from visiting their pages one by one.
bool AnyRegionOverlaps(uint64_t base, uint64_t size) {
  auto overlaps = [&](const abi::Region& r) { return r.base < base + size && base < r.end(); };
  for (const abi::Region& r : abi::kUserRegions) {
    if (overlaps(r)) return true;
  }
  for (const abi::Region& r : abi::kSupervisorRegions) {
    if (overlaps(r)) return true;
  }
  return overlaps(abi::kDoorbell);
}

uint64_t EntryFor(uint64_t addr, PageKind kind) {
  if (kind == PageKind::kAbsent) return 0;
  return addr | kPtePresent | kPteWritable | (kind == PageKind::kUser ? kPteUser : 0);
}

uint64_t SegmentDescriptor(uint8_t access, uint8_t flags) {  // base 0, limit 0xFFFFF
  return 0xFFFFull | (uint64_t{access} << 40) | (0xFull << 48) | (uint64_t{flags} << 52);
}

// Only the doorbell lies above RAM; page-table coverage is the first GiB (one PDPT entry).
static_assert(abi::kDoorbell.end() <= (1u << 30));

}  // namespace

Status BuildMachine(const GuestRam& ram) {
  // Page tables: one PML4 and PDPT entry, one page directory for the first GiB. A 2 MiB chunk
  // whose pages are all alike becomes a large page (or stays absent); a mixed one gets a 4 KiB
  // page table from kPageTables.
  ram.Write<uint64_t>(abi::kPml4.base, abi::kPdpt.base | kPtePresent | kPteWritable | kPteUser);
  ram.Write<uint64_t>(abi::kPdpt.base,
                      abi::kPageDirectory.base | kPtePresent | kPteWritable | kPteUser);
  uint64_t next_table = abi::kPageTables.base;
  for (uint64_t chunk = 0; chunk < kEntriesPerTable; ++chunk) {
    const uint64_t chunk_base = chunk * kLargePage;
    if (!AnyRegionOverlaps(chunk_base, kLargePage)) continue;  // stays absent (zeroed RAM)
    const PageKind first = KindOf(chunk_base);
    bool uniform = true;
    for (uint64_t p = 1; p < kEntriesPerTable && uniform; ++p) {
      uniform = KindOf(chunk_base + p * abi::kPageSize) == first;
    }
    uint64_t pde = 0;
    if (uniform) {
      pde = first == PageKind::kAbsent ? 0 : EntryFor(chunk_base, first) | kPteLarge;
    } else {
      if (next_table >= abi::kPageTables.end()) {
        return Internal("memory map needs more 4 KiB page tables than kPageTables holds");
      }
      for (uint64_t p = 0; p < kEntriesPerTable; ++p) {
        const uint64_t addr = chunk_base + p * abi::kPageSize;
        ram.Write<uint64_t>(next_table + 8 * p, EntryFor(addr, KindOf(addr)));
      }
      // The directory entry allows user access; the leaf entries decide.
      pde = next_table | kPtePresent | kPteWritable | kPteUser;
      next_table += abi::kPageSize;
    }
    ram.Write<uint64_t>(abi::kPageDirectory.base + 8 * chunk, pde);
  }

  // GDT: null, kernel code/data (0x08/0x10), user code32/data/code64 (0x23/0x2b/0x33), TSS.
  const uint64_t gdt = abi::kGdt.base;
  ram.Write<uint64_t>(gdt + kKernelCodeSelector, SegmentDescriptor(0x9B, 0xA));
  ram.Write<uint64_t>(gdt + kKernelDataSelector, SegmentDescriptor(0x93, 0xC));
  ram.Write<uint64_t>(gdt + (kUserCode32Selector & ~7u), SegmentDescriptor(0xFB, 0xC));
  ram.Write<uint64_t>(gdt + (kUserDataSelector & ~7u), SegmentDescriptor(0xF3, 0xC));
  ram.Write<uint64_t>(gdt + (kUserCodeSelector & ~7u), SegmentDescriptor(0xFB, 0xA));
  const uint64_t tss = abi::kTss.base;
  const uint64_t tss_limit = 103;
  // 64-bit TSS descriptor, type 0xB (busy): KVM_SET_SREGS loads TR without an ltr.
  ram.Write<uint64_t>(gdt + kTssSelector, (tss_limit & 0xFFFF) | ((tss & 0xFFFFFF) << 16) |
                                              (uint64_t{0x8B} << 40) | (((tss >> 24) & 0xFF) << 56));
  ram.Write<uint64_t>(gdt + kTssSelector + 8, tss >> 32);

  // TSS: RSP0 = top of the ring-0 stack; I/O map base past the limit (no port access).
  ram.Write<uint64_t>(tss + 4, abi::kRing0Stack.end());
  ram.Write<uint16_t>(tss + 102, 104);

  // Exception stubs: [push 0 if the CPU pushes no error code] push vector; hlt; jmp hlt.
  // The host recognises a stub halt by RIP and reads the frame below RSP0.
  for (uint32_t v = 0; v < kExceptionVectors; ++v) {
    const bool cpu_pushes_error = v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 ||
                                  v == 29 || v == 30;
    std::array<uint8_t, kExceptionStubStride> stub{};
    size_t n = 0;
    if (!cpu_pushes_error) {
      stub[n++] = 0x6A;  // push imm8 0
      stub[n++] = 0x00;
    }
    stub[n++] = 0x6A;  // push imm8 vector
    stub[n++] = static_cast<uint8_t>(v);
    stub[n++] = 0xF4;  // hlt
    stub[n++] = 0xEB;  // jmp back to hlt
    stub[n++] = 0xFD;
    const uint64_t target = abi::kExceptionStubs.base + uint64_t{v} * kExceptionStubStride;
    std::memcpy(ram.Range(target, stub.size()), stub.data(), stub.size());

    // 64-bit interrupt gate, DPL 0: a CPL3 `int N` on it raises #GP, which is reported too.
    const uint64_t low = (target & 0xFFFF) | (uint64_t{kKernelCodeSelector} << 16) |
                         (uint64_t{0x8E} << 40) | (((target >> 16) & 0xFFFF) << 48);
    const uint64_t gate = abi::kIdt.base + 16 * uint64_t{v};
    ram.Write<uint64_t>(gate, low);
    ram.Write<uint64_t>(gate + 8, target >> 32);
  }
  return Status::Ok();
}

uint64_t FaultFrameAddress() { return abi::kRing0Stack.end() - sizeof(FaultFrame); }

kvm_sregs InitialSregs(const kvm_sregs& reset_state) {
  kvm_sregs s = reset_state;
  auto segment = [](uint16_t selector, uint8_t type, bool code64) {
    kvm_segment seg{};
    seg.base = 0;
    seg.limit = 0xFFFFFFFF;
    seg.selector = selector;
    seg.type = type;
    seg.present = 1;
    seg.dpl = 3;
    seg.s = 1;
    seg.g = 1;
    seg.l = code64 ? 1 : 0;
    seg.db = code64 ? 0 : 1;
    return seg;
  };
  s.cs = segment(kUserCodeSelector, 11, true);
  s.ss = s.ds = s.es = s.fs = s.gs = segment(kUserDataSelector, 3, false);
  s.gdt.base = abi::kGdt.base;
  s.gdt.limit = 10 * 8 - 1;
  s.idt.base = abi::kIdt.base;
  s.idt.limit = kExceptionVectors * 16 - 1;
  kvm_segment tr{};
  tr.base = abi::kTss.base;
  tr.limit = 103;
  tr.selector = kTssSelector;
  tr.type = 11;
  tr.present = 1;
  s.tr = tr;
  s.cr3 = abi::kPml4.base;
  s.cr0 = kCr0;
  s.cr4 = kCr4;
  s.efer = kEfer;
  return s;
}

kvm_regs InitialRegs(uint64_t entry) {
  kvm_regs r{};
  r.rflags = 0x2;  // IF clear: no interrupts are ever delivered
  r.rip = entry;
  r.rsp = abi::kStackTop - 8;  // as if a call had pushed a return address
  return r;
}

}  // namespace instar::vmm
