// SPDX-License-Identifier: GPL-2.0

//! The eCS (enlightened critical section) guest/host ABI in Rust: a mirror
//! of `struct kvm_ecs` and of the KVM_FEATURE_ECS, MSR_KVM_ECS and
//! MSR_KVM_ECS_WORD constants that
//! guest-patches/0001-x86-kvm-Add-the-eCS-paravirt-ABI.patch adds to
//! arch/x86/include/uapi/asm/kvm_para.h, plus pure helpers that encode the
//! rules of Documentation/virt/kvm/x86/msr.rst (see docs/ecs-abi.md):
//! encoding and checking both MSRs' values, the give-back action, and the
//! host's test for a critical section.
//!
//! The patch is the single source of truth. build.rs builds the header from
//! it and checks it three ways, which the tests compare: a C probe compiled
//! by the system compiler, bindgen's reading of the header ([`bindgen_ffi`])
//! and this mirror.

use core::fmt;
use core::mem::{align_of, offset_of, size_of};

pub mod patchfile;

/// bindgen's reading of the header that the patch defines.
#[allow(non_camel_case_types, non_upper_case_globals, dead_code, clippy::all)]
pub mod bindgen_ffi {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

/// What build.rs learned from the header: its text and origin, its members
/// and the `#define`s the patch adds.
pub mod header {
    include!(concat!(env!("OUT_DIR"), "/header_model.rs"));
}

/// The C probe (generated and compiled by build.rs), as data.
pub mod c_probe {
    use super::FieldLayout;
    use core::ffi::{c_char, c_int, CStr};

    #[repr(C)]
    struct ProbeField {
        name: *const c_char,
        offset: u64,
        size: u64,
    }

    #[repr(C)]
    struct ProbeConst {
        name: *const c_char,
        value: u64,
        defined: c_int,
    }

    extern "C" {
        fn ecs_probe_sizeof() -> u64;
        fn ecs_probe_alignof() -> u64;
        fn ecs_probe_nfields() -> usize;
        fn ecs_probe_field(i: usize) -> *const ProbeField;
        fn ecs_probe_nconsts() -> usize;
        fn ecs_probe_const(i: usize) -> *const ProbeConst;
    }

    fn name(p: *const c_char) -> &'static str {
        // SAFETY: the probe's names are NUL-terminated string literals.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    /// `sizeof(struct kvm_ecs)`.
    pub fn size() -> usize {
        // SAFETY: the probe's functions take no arguments and touch nothing.
        unsafe { ecs_probe_sizeof() as usize }
    }

    /// `_Alignof(struct kvm_ecs)`.
    pub fn align() -> usize {
        // SAFETY: as above.
        unsafe { ecs_probe_alignof() as usize }
    }

    /// `offsetof` and `sizeof` of every member the header declares.
    pub fn fields() -> Vec<FieldLayout> {
        // SAFETY: indices below ecs_probe_nfields() point into a static array.
        (0..unsafe { ecs_probe_nfields() })
            .map(|i| unsafe { &*ecs_probe_field(i) })
            .map(|f| FieldLayout {
                name: name(f.name),
                offset: f.offset as usize,
                size: f.size as usize,
            })
            .collect()
    }

    /// The constants' values, `None` for one the header does not define.
    pub fn constants() -> Vec<(&'static str, Option<u64>)> {
        // SAFETY: indices below ecs_probe_nconsts() point into a static array.
        (0..unsafe { ecs_probe_nconsts() })
            .map(|i| unsafe { &*ecs_probe_const(i) })
            .map(|c| (name(c.name), (c.defined != 0).then_some(c.value)))
            .collect()
    }
}

/// Offset and size of one member of `struct kvm_ecs`, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLayout {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

/// CPUID leaf whose EAX holds the KVM_FEATURE_* bits.
pub const KVM_CPUID_FEATURES: u32 = 0x4000_0001;
/// CPUID.KVM_CPUID_FEATURES.EAX bit: the host offers MSR_KVM_ECS and
/// MSR_KVM_ECS_WORD.
pub const KVM_FEATURE_ECS: u32 = 23;
/// The MSR that registers a vCPU's `struct kvm_ecs`, and through which the
/// guest gives an extension back.
pub const MSR_KVM_ECS: u32 = 0x4b56_4d80;
/// The MSR that registers the optional guest word that shows critical
/// sections too (a Linux guest: the low word of its preemption counter).
pub const MSR_KVM_ECS_WORD: u32 = 0x4b56_4d81;
/// Bit 0 of the KVM paravirt MSRs: enabled.
pub const KVM_MSR_ENABLED: u64 = 1;
/// log2 of the area's alignment.
pub const KVM_ECS_ALIGNMENT_BITS: u32 = 6;
/// MSR_KVM_ECS bits 63:6: the area's guest physical address.
pub const KVM_ECS_GPA_MASK: u64 = !0 << KVM_ECS_ALIGNMENT_BITS;
/// MSR_KVM_ECS bit 1: the give-back action. Valid only in a guest write of
/// the value the MSR holds while enabled; never stored, reads back 0.
pub const KVM_ECS_GIVE_BACK: u64 = 1 << 1;
/// MSR_KVM_ECS bits 5:2: reserved, must be zero (else #GP).
pub const KVM_ECS_RESERVED_MASK: u64 = ((1 << KVM_ECS_ALIGNMENT_BITS) - 1) & !3;
/// MSR_KVM_ECS_WORD bits 63:2: the word's 4-byte aligned guest physical
/// address.
pub const KVM_ECS_WORD_GPA_MASK: u64 = !3;
/// MSR_KVM_ECS_WORD bit 1: reserved, must be zero (else #GP).
pub const KVM_ECS_WORD_RESERVED_MASK: u64 = 1 << 1;

/// The mirror's constants by their C names, for comparison with the header.
pub const CONSTANTS: &[(&str, u64)] = &[
    ("KVM_CPUID_FEATURES", KVM_CPUID_FEATURES as u64),
    ("KVM_FEATURE_ECS", KVM_FEATURE_ECS as u64),
    ("MSR_KVM_ECS", MSR_KVM_ECS as u64),
    ("MSR_KVM_ECS_WORD", MSR_KVM_ECS_WORD as u64),
    ("KVM_MSR_ENABLED", KVM_MSR_ENABLED),
    ("KVM_ECS_ALIGNMENT_BITS", KVM_ECS_ALIGNMENT_BITS as u64),
    ("KVM_ECS_GPA_MASK", KVM_ECS_GPA_MASK),
    ("KVM_ECS_GIVE_BACK", KVM_ECS_GIVE_BACK),
    ("KVM_ECS_RESERVED_MASK", KVM_ECS_RESERVED_MASK),
    ("KVM_ECS_WORD_GPA_MASK", KVM_ECS_WORD_GPA_MASK),
    ("KVM_ECS_WORD_RESERVED_MASK", KVM_ECS_WORD_RESERVED_MASK),
];

/// Declare `KvmEcs` and its member table from one list.
macro_rules! kvm_ecs {
    ($($(#[$attr:meta])* $name:ident: $ty:ty,)*) => {
        /// `struct kvm_ecs`: one per vCPU, 64 bytes, 64-byte aligned. Each
        /// member has one writer; reserved bytes are zero. Nothing in it is
        /// configuration: the host reads nothing from it when an MSR is
        /// written.
        #[repr(C, align(64))]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct KvmEcs {
            $($(#[$attr])* pub $name: $ty,)*
        }

        /// The mirror's members, in declaration order.
        pub const KVM_ECS_FIELDS: &[FieldLayout] = &[
            $(FieldLayout {
                name: stringify!($name),
                offset: offset_of!(KvmEcs, $name),
                size: size_of::<$ty>(),
            },)*
        ];
    };
}

kvm_ecs! {
    /// Guest: non-preemptible sections the registered word does not show.
    nonpreemptible_count: u32,
    /// Guest: preemptible sections of the running task (mutex and rwsem
    /// holders, preemptible RCU readers); saved and restored per task.
    preemptible_count: u32,
    /// Guest: bits of the registered word that show critical sections (a
    /// Linux guest: the low 32 bits of `!PREEMPT_NEED_RESCHED`).
    word_mask: u32,
    /// Guest: masked word value meaning "no critical section" (a Linux
    /// guest: 0, or the idle task's count while it runs).
    word_base: u32,
    /// Host: 1 while the vCPU is scheduled out although runnable.
    vcpu_preempted: u8,
    /// Host: 1 if the physical CPU had other runnable tasks at sched-in.
    pcpu_overloaded: u8,
    /// Host: 1 while an extension is in effect; the guest gives it back
    /// with [`KVM_ECS_GIVE_BACK`].
    extension_granted: u8,
    /// Reserved, zero.
    u8_pad: [u8; 1],
    /// Reserved, zero.
    pad: [u32; 11],
}

// The layout, checked at compile time against the numbers the ABI
// documentation gives.
const _: () = assert!(size_of::<KvmEcs>() == 64);
const _: () = assert!(align_of::<KvmEcs>() == 64);
const _: () = assert!(offset_of!(KvmEcs, nonpreemptible_count) == 0x00);
const _: () = assert!(offset_of!(KvmEcs, preemptible_count) == 0x04);
const _: () = assert!(offset_of!(KvmEcs, word_mask) == 0x08);
const _: () = assert!(offset_of!(KvmEcs, word_base) == 0x0c);
const _: () = assert!(offset_of!(KvmEcs, vcpu_preempted) == 0x10);
const _: () = assert!(offset_of!(KvmEcs, pcpu_overloaded) == 0x11);
const _: () = assert!(offset_of!(KvmEcs, extension_granted) == 0x12);
const _: () = assert!(offset_of!(KvmEcs, u8_pad) == 0x13);
const _: () = assert!(offset_of!(KvmEcs, pad) == 0x14);
// And against bindgen's reading of the header.
const _: () = assert!(size_of::<KvmEcs>() == size_of::<bindgen_ffi::kvm_ecs>());
const _: () = assert!(align_of::<KvmEcs>() == align_of::<bindgen_ffi::kvm_ecs>());

/// The C name of one of the two eCS MSRs, for messages.
pub const fn msr_name(msr: u32) -> &'static str {
    match msr {
        MSR_KVM_ECS => "MSR_KVM_ECS",
        MSR_KVM_ECS_WORD => "MSR_KVM_ECS_WORD",
        _ => "an MSR that is not eCS's",
    }
}

/// Why a value must not be written to MSR_KVM_ECS or MSR_KVM_ECS_WORD: the
/// host injects #GP (or, for a write from the VMM, fails it), and the MSR
/// keeps its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsrError {
    /// The address is not aligned as `msr` requires (`align` bytes: 64 for
    /// the area, 4 for the word).
    Unaligned { msr: u32, gpa: u64, align: u64 },
    /// Reserved bits of `msr` are set.
    ReservedBits { msr: u32, bits: u64 },
    /// The address has bits above the guest's MAXPHYADDR.
    BeyondMaxPhysAddr { msr: u32, gpa: u64, maxphyaddr: u32 },
    /// KVM_ECS_GIVE_BACK in a write from the VMM (KVM_SET_MSRS): only the
    /// guest gives an extension back.
    GiveBackFromHost,
    /// KVM_ECS_GIVE_BACK while MSR_KVM_ECS is disabled.
    GiveBackWhileDisabled,
    /// KVM_ECS_GIVE_BACK with a value other than the one the MSR holds.
    GiveBackNotCurrent { value: u64, current: u64 },
}

impl fmt::Display for MsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unaligned { msr, gpa, align } => write!(
                f,
                "{} address {gpa:#x} is not {align}-byte aligned",
                msr_name(msr)
            ),
            Self::ReservedBits { msr, bits } => {
                write!(f, "reserved {} bits {bits:#x} are set", msr_name(msr))
            }
            Self::BeyondMaxPhysAddr {
                msr,
                gpa,
                maxphyaddr,
            } => write!(
                f,
                "{} address {gpa:#x} is beyond MAXPHYADDR {maxphyaddr}",
                msr_name(msr)
            ),
            Self::GiveBackFromHost => write!(f, "KVM_ECS_GIVE_BACK written by the host"),
            Self::GiveBackWhileDisabled => {
                write!(f, "KVM_ECS_GIVE_BACK while MSR_KVM_ECS is disabled")
            }
            Self::GiveBackNotCurrent { value, current } => write!(
                f,
                "KVM_ECS_GIVE_BACK in {value:#x}, but MSR_KVM_ECS holds {current:#x}"
            ),
        }
    }
}

impl std::error::Error for MsrError {}

/// A decoded MSR_KVM_ECS value, as the MSR holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsMsr {
    pub enabled: bool,
    /// The area's guest physical address (bits 63:6).
    pub gpa: u64,
}

/// What a write to MSR_KVM_ECS that the host accepts does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcsWrite {
    /// The MSR holds the value from now on: the area is registered, or,
    /// disabled, none is.
    Set(EcsMsr),
    /// The guest gives the extension in effect (if any) back; the MSR keeps
    /// its value and nothing else changes.
    GiveBack,
}

/// A decoded MSR_KVM_ECS_WORD value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsWordMsr {
    pub enabled: bool,
    /// The word's guest physical address (bits 63:2).
    pub gpa: u64,
}

/// Whether `gpa` has bits at or above `maxphyaddr`.
const fn beyond(gpa: u64, maxphyaddr: u32) -> bool {
    maxphyaddr < 64 && gpa >> maxphyaddr != 0
}

/// The MSR_KVM_ECS value that enables eCS with the area at `gpa`.
pub fn encode_msr(gpa: u64) -> Result<u64, MsrError> {
    if gpa & !KVM_ECS_GPA_MASK != 0 {
        return Err(MsrError::Unaligned {
            msr: MSR_KVM_ECS,
            gpa,
            align: 1 << KVM_ECS_ALIGNMENT_BITS,
        });
    }
    Ok(gpa | KVM_MSR_ENABLED)
}

/// The value a guest writes to MSR_KVM_ECS to give an extension back:
/// `current`, the value the MSR holds, with [`KVM_ECS_GIVE_BACK`].
pub const fn encode_give_back(current: u64) -> u64 {
    current | KVM_ECS_GIVE_BACK
}

/// The checks the host makes on a write of `value` to MSR_KVM_ECS, in its
/// order, and what the write does. `current` is the value the MSR holds,
/// `host_initiated` says whether the VMM writes it (KVM_SET_MSRS) rather
/// than the guest. Reserved bits are refused first (also while disabled);
/// a value with KVM_ECS_GIVE_BACK is a give-back, valid only from the
/// guest, while enabled and with exactly `current` otherwise; any other
/// value is stored, its address checked against the guest's MAXPHYADDR
/// while enabled. (Whether the address is in guest RAM only the host
/// knows; it reads nothing from the area.)
pub fn validate_msr(
    value: u64,
    current: u64,
    host_initiated: bool,
    maxphyaddr: u32,
) -> Result<EcsWrite, MsrError> {
    let reserved = value & KVM_ECS_RESERVED_MASK;
    if reserved != 0 {
        return Err(MsrError::ReservedBits {
            msr: MSR_KVM_ECS,
            bits: reserved,
        });
    }
    if value & KVM_ECS_GIVE_BACK != 0 {
        return if host_initiated {
            Err(MsrError::GiveBackFromHost)
        } else if current & KVM_MSR_ENABLED == 0 {
            Err(MsrError::GiveBackWhileDisabled)
        } else if value & !KVM_ECS_GIVE_BACK != current {
            Err(MsrError::GiveBackNotCurrent { value, current })
        } else {
            Ok(EcsWrite::GiveBack)
        };
    }
    let msr = EcsMsr {
        enabled: value & KVM_MSR_ENABLED != 0,
        gpa: value & KVM_ECS_GPA_MASK,
    };
    addressable(MSR_KVM_ECS, msr.enabled, msr.gpa, maxphyaddr)?;
    Ok(EcsWrite::Set(msr))
}

/// An enabled registration's address must be below the guest's MAXPHYADDR.
fn addressable(msr: u32, enabled: bool, gpa: u64, maxphyaddr: u32) -> Result<(), MsrError> {
    if enabled && beyond(gpa, maxphyaddr) {
        return Err(MsrError::BeyondMaxPhysAddr {
            msr,
            gpa,
            maxphyaddr,
        });
    }
    Ok(())
}

/// Whether a write of `value` to MSR_KVM_ECS is a give-back the host
/// accepts while the MSR holds `current`.
pub fn is_valid_give_back(value: u64, current: u64, host_initiated: bool) -> bool {
    // The address was checked when `current` was written.
    validate_msr(value, current, host_initiated, 64) == Ok(EcsWrite::GiveBack)
}

/// The MSR_KVM_ECS_WORD value that registers the word at `gpa`.
pub fn encode_word_msr(gpa: u64) -> Result<u64, MsrError> {
    if gpa & !KVM_ECS_WORD_GPA_MASK != 0 {
        return Err(MsrError::Unaligned {
            msr: MSR_KVM_ECS_WORD,
            gpa,
            align: size_of::<u32>() as u64,
        });
    }
    Ok(gpa | KVM_MSR_ENABLED)
}

/// The checks the host makes on a write to MSR_KVM_ECS_WORD, from the guest
/// or the VMM alike: the reserved bit (also while disabled), and the
/// address against the guest's MAXPHYADDR while enabled.
pub fn validate_word_msr(value: u64, maxphyaddr: u32) -> Result<EcsWordMsr, MsrError> {
    let reserved = value & KVM_ECS_WORD_RESERVED_MASK;
    if reserved != 0 {
        return Err(MsrError::ReservedBits {
            msr: MSR_KVM_ECS_WORD,
            bits: reserved,
        });
    }
    let msr = EcsWordMsr {
        enabled: value & KVM_MSR_ENABLED != 0,
        gpa: value & KVM_ECS_WORD_GPA_MASK,
    };
    addressable(MSR_KVM_ECS_WORD, msr.enabled, msr.gpa, maxphyaddr)?;
    Ok(msr)
}

/// The `word_mask` of a Linux guest that registers its preemption counter:
/// the low 32 bits of `!PREEMPT_NEED_RESCHED`. x86 keeps that bit inverted
/// in the counter, as bit 31 of a 32-bit counter (mask 0x7fff_ffff) or bit
/// 63 of a 64-bit one (mask 0xffff_ffff: every bit of the low word counts).
pub const fn preempt_count_mask(preempt_need_resched: u64) -> u32 {
    !preempt_need_resched as u32
}

impl KvmEcs {
    /// An all-zero area, as the guest must present it before enabling it.
    pub const fn zeroed() -> Self {
        Self {
            nonpreemptible_count: 0,
            preemptible_count: 0,
            word_mask: 0,
            word_base: 0,
            vcpu_preempted: 0,
            pcpu_overloaded: 0,
            extension_granted: 0,
            u8_pad: [0; 1],
            pad: [0; 11],
        }
    }

    /// Whether the reserved bytes are zero, as the guest must leave them.
    /// (The host does not check: nothing in the area is validated.)
    pub fn reserved_is_zero(&self) -> bool {
        self.u8_pad.iter().all(|&b| b == 0) && self.pad.iter().all(|&w| w == 0)
    }

    /// Whether the registered word, of value `word`, shows a critical
    /// section: its bits in `word_mask` differ from `word_base`.
    pub const fn word_shows_section(&self, word: u32) -> bool {
        word & self.word_mask != self.word_base
    }

    /// The host's test: is the vCPU in a critical section? `word` is
    /// `Some` of the word registered with MSR_KVM_ECS_WORD while that MSR is
    /// enabled, `None` while it is disabled (then `word_mask` and
    /// `word_base` are not used).
    pub fn in_critical_section(&self, word: Option<u32>) -> bool {
        self.nonpreemptible_count != 0
            || self.preemptible_count != 0
            || word.is_some_and(|w| self.word_shows_section(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // x86's PREEMPT_NEED_RESCHED: MSB of the counter (arch/x86/include/asm/preempt.h).
    const NEED_RESCHED_64: u64 = 1 << 63;
    const NEED_RESCHED_32: u64 = 1 << 31;
    const MAXPHYADDR: u32 = 52;

    #[test]
    fn mirror_is_64_bytes_and_64_aligned() {
        assert_eq!(size_of::<KvmEcs>(), 64);
        assert_eq!(align_of::<KvmEcs>(), 64);
        let end = KVM_ECS_FIELDS.last().map(|f| f.offset + f.size);
        assert_eq!(end, Some(64), "the last member must end the struct");
    }

    #[test]
    fn mirror_has_no_implicit_padding() {
        let mut next = 0;
        for f in KVM_ECS_FIELDS {
            assert_eq!(f.offset, next, "hole before {}", f.name);
            next = f.offset + f.size;
        }
    }

    #[test]
    fn ecs_msr_masks_partition_the_value() {
        let parts = [
            KVM_MSR_ENABLED,
            KVM_ECS_GIVE_BACK,
            KVM_ECS_RESERVED_MASK,
            KVM_ECS_GPA_MASK,
        ];
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                assert_eq!(a & b, 0, "{a:#x} and {b:#x} overlap");
            }
        }
        assert_eq!(parts.iter().fold(0, |all, p| all | p), u64::MAX);
        assert_eq!(KVM_ECS_GIVE_BACK, 0b10);
        assert_eq!(KVM_ECS_RESERVED_MASK, 0b11_1100);
        assert_eq!(1u64 << KVM_ECS_ALIGNMENT_BITS, align_of::<KvmEcs>() as u64);
    }

    #[test]
    fn word_msr_masks_partition_the_value() {
        assert_eq!(KVM_ECS_WORD_GPA_MASK & KVM_ECS_WORD_RESERVED_MASK, 0);
        assert_eq!(KVM_ECS_WORD_GPA_MASK & KVM_MSR_ENABLED, 0);
        assert_eq!(KVM_ECS_WORD_RESERVED_MASK & KVM_MSR_ENABLED, 0);
        assert_eq!(
            KVM_ECS_WORD_GPA_MASK | KVM_ECS_WORD_RESERVED_MASK | KVM_MSR_ENABLED,
            u64::MAX
        );
        assert_eq!(KVM_ECS_WORD_RESERVED_MASK, 0b10);
        // The word is a naturally aligned u32.
        assert_eq!(!KVM_ECS_WORD_GPA_MASK + 1, size_of::<u32>() as u64);
    }

    #[test]
    fn msrs_and_feature_bit_are_in_their_ranges() {
        for msr in [MSR_KVM_ECS, MSR_KVM_ECS_WORD] {
            assert_eq!(msr >> 8, 0x4b_564d, "{msr:#x}: KVM's paravirt MSR range");
            // Upstream uses 0x00-0x08 and, internally, 0xff downwards.
            assert!((0x09..0xff).contains(&(msr & 0xff)), "{msr:#x}");
        }
        assert_eq!(MSR_KVM_ECS_WORD, MSR_KVM_ECS + 1);
        assert_eq!(msr_name(MSR_KVM_ECS), "MSR_KVM_ECS");
        assert_eq!(msr_name(MSR_KVM_ECS_WORD), "MSR_KVM_ECS_WORD");
        // Bits 0-17 are upstream's, 24-31 belong to pvclock.
        assert!((18..24).contains(&KVM_FEATURE_ECS));
    }

    #[test]
    fn encode_accepts_aligned_and_rejects_unaligned() {
        assert_eq!(encode_msr(0x1234_5680), Ok(0x1234_5681));
        for gpa in [0x1234_5690, 0x41, 0x42] {
            assert_eq!(
                encode_msr(gpa),
                Err(MsrError::Unaligned {
                    msr: MSR_KVM_ECS,
                    gpa,
                    align: 64
                })
            );
        }
    }

    #[test]
    fn encode_word_accepts_4_aligned_and_rejects_the_rest() {
        assert_eq!(encode_word_msr(0x1_2345_6788), Ok(0x1_2345_6789));
        assert_eq!(encode_word_msr(0x1004), Ok(0x1005));
        for gpa in [0x1001, 0x1002, 0x1003] {
            assert_eq!(
                encode_word_msr(gpa),
                Err(MsrError::Unaligned {
                    msr: MSR_KVM_ECS_WORD,
                    gpa,
                    align: 4
                })
            );
        }
    }

    #[test]
    fn validate_roundtrips_encode() {
        let v = encode_msr(0x7fff_ffc0).unwrap();
        let set = |enabled, gpa| Ok(EcsWrite::Set(EcsMsr { enabled, gpa }));
        // Stored alike from the guest and the VMM, whatever the MSR held.
        for (current, host) in [(0, false), (0, true), (v, true), (0x1001, false)] {
            assert_eq!(
                validate_msr(v, current, host, MAXPHYADDR),
                set(true, 0x7fff_ffc0)
            );
            assert_eq!(validate_msr(0, current, host, MAXPHYADDR), set(false, 0));
        }
        let w = encode_word_msr(0x7fff_fffc).unwrap();
        assert_eq!(
            validate_word_msr(w, MAXPHYADDR),
            Ok(EcsWordMsr {
                enabled: true,
                gpa: 0x7fff_fffc
            })
        );
        assert_eq!(
            validate_word_msr(0, MAXPHYADDR),
            Ok(EcsWordMsr {
                enabled: false,
                gpa: 0
            })
        );
    }

    #[test]
    fn validate_rejects_each_reserved_bit() {
        for bit in 2..KVM_ECS_ALIGNMENT_BITS {
            let want = Err(MsrError::ReservedBits {
                msr: MSR_KVM_ECS,
                bits: 1 << bit,
            });
            let v = 0x1000 | KVM_MSR_ENABLED | 1 << bit;
            assert_eq!(validate_msr(v, 0, false, MAXPHYADDR), want, "bit {bit}");
            // Reserved even while disabled.
            assert_eq!(
                validate_msr(1 << bit, 0, false, MAXPHYADDR),
                want,
                "bit {bit} disabled"
            );
            // And checked before a give-back.
            let current = 0x1001;
            assert_eq!(
                validate_msr(
                    encode_give_back(current) | 1 << bit,
                    current,
                    false,
                    MAXPHYADDR
                ),
                want,
                "bit {bit} with KVM_ECS_GIVE_BACK"
            );
        }
        let want = Err(MsrError::ReservedBits {
            msr: MSR_KVM_ECS_WORD,
            bits: 0b10,
        });
        assert_eq!(validate_word_msr(0x1000 | 0b11, MAXPHYADDR), want);
        assert_eq!(validate_word_msr(0b10, MAXPHYADDR), want, "disabled");
    }

    #[test]
    fn validate_rejects_addresses_beyond_maxphyaddr() {
        let v = encode_msr(1 << 52).unwrap();
        assert_eq!(
            validate_msr(v, 0, false, 52),
            Err(MsrError::BeyondMaxPhysAddr {
                msr: MSR_KVM_ECS,
                gpa: 1 << 52,
                maxphyaddr: 52
            })
        );
        assert!(validate_msr(v, 0, false, 53).is_ok());
        // A disabled value's address is not looked at.
        assert!(validate_msr(1 << 52, 0, false, 52).is_ok());

        let w = encode_word_msr(1 << 52).unwrap();
        assert_eq!(
            validate_word_msr(w, 52),
            Err(MsrError::BeyondMaxPhysAddr {
                msr: MSR_KVM_ECS_WORD,
                gpa: 1 << 52,
                maxphyaddr: 52
            })
        );
        assert!(validate_word_msr(w, 53).is_ok());
        assert!(validate_word_msr(1 << 52, 52).is_ok());
    }

    #[test]
    fn give_back_is_the_current_value_with_bit_1() {
        let current = encode_msr(0x1234_5680).unwrap();
        let value = encode_give_back(current);
        assert_eq!(value, 0x1234_5683);
        assert_eq!(
            validate_msr(value, current, false, MAXPHYADDR),
            Ok(EcsWrite::GiveBack)
        );
        assert!(is_valid_give_back(value, current, false));
        // A give-back is not a value to store: the bit is never set in it.
        assert_eq!(
            validate_msr(current, current, false, MAXPHYADDR),
            Ok(EcsWrite::Set(EcsMsr {
                enabled: true,
                gpa: 0x1234_5680
            }))
        );
    }

    #[test]
    fn give_back_is_refused_from_the_host() {
        let current = encode_msr(0x1234_5680).unwrap();
        // A VMM that writes back what it saved never sets the bit; one that
        // does fails, even with the right value.
        assert_eq!(
            validate_msr(encode_give_back(current), current, true, MAXPHYADDR),
            Err(MsrError::GiveBackFromHost)
        );
        assert!(!is_valid_give_back(
            encode_give_back(current),
            current,
            true
        ));
    }

    #[test]
    fn give_back_is_refused_while_disabled() {
        assert_eq!(
            validate_msr(KVM_ECS_GIVE_BACK, 0, false, MAXPHYADDR),
            Err(MsrError::GiveBackWhileDisabled)
        );
        assert!(!is_valid_give_back(encode_give_back(0), 0, false));
        // A disabled value that kept its address is still disabled.
        let current = 0x1234_5680;
        assert_eq!(
            validate_msr(encode_give_back(current), current, false, MAXPHYADDR),
            Err(MsrError::GiveBackWhileDisabled)
        );
    }

    #[test]
    fn give_back_is_refused_with_another_value() {
        let current = encode_msr(0x1234_5680).unwrap();
        for value in [
            // Another area.
            encode_give_back(encode_msr(0x1234_56c0).unwrap()),
            // The same area, disabled.
            0x1234_5680 | KVM_ECS_GIVE_BACK,
            // Nothing.
            KVM_ECS_GIVE_BACK,
        ] {
            assert_eq!(
                validate_msr(value, current, false, MAXPHYADDR),
                Err(MsrError::GiveBackNotCurrent { value, current }),
                "{value:#x}"
            );
            assert!(!is_valid_give_back(value, current, false), "{value:#x}");
        }
        // Only a value with the bit is a give-back.
        assert!(!is_valid_give_back(current, current, false));
    }

    #[test]
    fn errors_name_the_msr() {
        let e = encode_word_msr(0x1002).unwrap_err().to_string();
        assert!(
            e.contains("MSR_KVM_ECS_WORD") && e.contains("4-byte"),
            "{e}"
        );
        let e = encode_msr(0x1010).unwrap_err().to_string();
        assert!(
            e.starts_with("MSR_KVM_ECS ") && e.contains("64-byte"),
            "{e}"
        );
    }

    #[test]
    fn mask_drops_x86_inverted_need_resched() {
        // 64-bit counter: the bit is in the high word, all of the low counts.
        assert_eq!(preempt_count_mask(NEED_RESCHED_64), 0xffff_ffff);
        // 32-bit counter: bit 31 must go.
        assert_eq!(preempt_count_mask(NEED_RESCHED_32), 0x7fff_ffff);
    }

    #[test]
    fn a_zeroed_area_is_reserved_zero_and_outside_sections() {
        let e = KvmEcs::zeroed();
        assert_eq!(e, KvmEcs::default());
        assert!(e.reserved_is_zero());
        assert!(!e.in_critical_section(None));
        assert!(!e.in_critical_section(Some(0)));
        let mut e = KvmEcs::zeroed();
        e.pad[10] = 1;
        assert!(!e.reserved_is_zero());
        let mut e = KvmEcs::zeroed();
        e.u8_pad[0] = 1;
        assert!(!e.reserved_is_zero());
    }

    #[test]
    fn counters_mark_a_critical_section() {
        let mut e = KvmEcs::zeroed();
        e.nonpreemptible_count = 1;
        assert!(e.in_critical_section(None));
        assert!(e.in_critical_section(Some(0)));
        e.nonpreemptible_count = 0;
        e.preemptible_count = 2;
        assert!(e.in_critical_section(None));
        // Whatever the word shows.
        e.word_mask = !0;
        assert!(e.in_critical_section(Some(0)));
    }

    /// A Linux guest's area with its preemption counter (32-bit, as the low
    /// word of x86-64's 64-bit one would be with bit 31 inverted) registered.
    fn linux_area() -> KvmEcs {
        KvmEcs {
            word_mask: preempt_count_mask(NEED_RESCHED_32),
            ..KvmEcs::zeroed()
        }
    }

    #[test]
    fn word_is_masked_and_compared_with_the_base() {
        let need_resched_clear = NEED_RESCHED_32 as u32; // set = no resched pending
        let mut e = linux_area();
        // Task context, preemption enabled: only the inverted bit is set.
        assert!(!e.in_critical_section(Some(need_resched_clear)));
        // Reschedule pending: the bit is clear; still no critical section.
        assert!(!e.in_critical_section(Some(0)));
        // A spinlock held.
        assert!(e.in_critical_section(Some(need_resched_clear | 1)));
        // A hardirq (HARDIRQ_OFFSET 1 << 16).
        assert!(e.in_critical_section(Some(1 << 16)));
        // The idle task runs with preemption disabled once.
        e.word_base = 1;
        assert!(!e.in_critical_section(Some(need_resched_clear | 1)));
        assert!(e.in_critical_section(Some(need_resched_clear | 2)));
        assert!(e.in_critical_section(Some(need_resched_clear)));
        assert!(e.in_critical_section(Some(need_resched_clear | 1 | 1 << 16)));
    }

    #[test]
    fn without_a_word_mask_and_base_are_not_used() {
        let mut e = linux_area();
        e.word_base = 1;
        // The same area with MSR_KVM_ECS_WORD enabled is in a section ...
        assert!(e.in_critical_section(Some(0)));
        assert!(e.in_critical_section(Some(5)));
        // ... and with it disabled not, whatever mask and base hold.
        assert!(!e.in_critical_section(None));
        e.word_mask = 0;
        e.word_base = 0x1234;
        assert!(!e.in_critical_section(None));
    }

    #[test]
    fn word_shows_a_section_only_in_the_masked_bits() {
        let e = KvmEcs {
            word_mask: 0x00ff,
            word_base: 0x0001,
            ..KvmEcs::zeroed()
        };
        assert!(!e.word_shows_section(0x0001));
        assert!(!e.word_shows_section(0xff01));
        assert!(e.word_shows_section(0x0000));
        assert!(e.word_shows_section(0x0002));
        // A base with bits outside the mask never matches: always a section.
        let e = KvmEcs {
            word_mask: 0x00ff,
            word_base: 0x0100,
            ..KvmEcs::zeroed()
        };
        assert!(e.word_shows_section(0x0100));
        assert!(e.word_shows_section(0));
    }
}
