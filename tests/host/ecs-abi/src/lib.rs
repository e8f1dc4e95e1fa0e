// SPDX-License-Identifier: GPL-2.0

//! The eCS (enlightened critical section) guest/host ABI in Rust: a mirror
//! of `struct kvm_ecs` and of the MSR_KVM_ECS and KVM_FEATURE_ECS constants
//! that guest-patches/0001-x86-kvm-Add-the-eCS-paravirt-ABI.patch adds to
//! arch/x86/include/uapi/asm/kvm_para.h, plus pure helpers that encode the
//! rules of Documentation/virt/kvm/x86/msr.rst (see docs/ecs-abi.md).
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
/// CPUID.KVM_CPUID_FEATURES.EAX bit: the host offers MSR_KVM_ECS.
pub const KVM_FEATURE_ECS: u32 = 23;
/// The MSR that registers a vCPU's `struct kvm_ecs`.
pub const MSR_KVM_ECS: u32 = 0x4b56_4d80;
/// Bit 0 of the KVM paravirt MSRs: enabled.
pub const KVM_MSR_ENABLED: u64 = 1;
/// log2 of the area's alignment.
pub const KVM_ECS_ALIGNMENT_BITS: u32 = 6;
/// MSR_KVM_ECS bits 63:6: the area's guest physical address.
pub const KVM_ECS_GPA_MASK: u64 = !0 << KVM_ECS_ALIGNMENT_BITS;
/// MSR_KVM_ECS bits 5:1: reserved, must be zero (else #GP).
pub const KVM_ECS_RESERVED_MASK: u64 = ((1 << KVM_ECS_ALIGNMENT_BITS) - 1) & !1;
/// `flags`: the host also reads the guest's preemption counter.
pub const KVM_ECS_F_PREEMPT_COUNT: u32 = 1 << 0;
/// Every `flags` bit this version of the ABI defines.
pub const KVM_ECS_KNOWN_FLAGS: u32 = KVM_ECS_F_PREEMPT_COUNT;

/// The mirror's constants by their C names, for comparison with the header.
pub const CONSTANTS: &[(&str, u64)] = &[
    ("KVM_CPUID_FEATURES", KVM_CPUID_FEATURES as u64),
    ("KVM_FEATURE_ECS", KVM_FEATURE_ECS as u64),
    ("MSR_KVM_ECS", MSR_KVM_ECS as u64),
    ("KVM_MSR_ENABLED", KVM_MSR_ENABLED),
    ("KVM_ECS_ALIGNMENT_BITS", KVM_ECS_ALIGNMENT_BITS as u64),
    ("KVM_ECS_GPA_MASK", KVM_ECS_GPA_MASK),
    ("KVM_ECS_RESERVED_MASK", KVM_ECS_RESERVED_MASK),
    ("KVM_ECS_F_PREEMPT_COUNT", KVM_ECS_F_PREEMPT_COUNT as u64),
];

/// Declare `KvmEcs` and its member table from one list.
macro_rules! kvm_ecs {
    ($($(#[$attr:meta])* $name:ident: $ty:ty,)*) => {
        /// `struct kvm_ecs`: one per vCPU, 64 bytes, 64-byte aligned. Each
        /// member has one writer; reserved bytes are zero.
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
    /// Guest, before enabling: `KVM_ECS_F_*`. Latched by the host.
    flags: u32,
    /// Guest, before enabling: bits of the preemption counter word that
    /// count critical sections (low 32 bits of `!PREEMPT_NEED_RESCHED`).
    preempt_count_mask: u32,
    /// Guest, before enabling: low half of the counter word's address.
    preempt_count_gpa_lo: u32,
    /// Guest, before enabling: high half of the counter word's address.
    preempt_count_gpa_hi: u32,
    /// Guest: non-preemptible sections the preemption counter does not show.
    nonpreemptible_count: u32,
    /// Guest: preemptible sections of the running task (mutex and rwsem
    /// holders, preemptible RCU readers); saved and restored per task.
    preemptible_count: u32,
    /// Guest: masked counter value meaning "no critical section" (0, or
    /// PREEMPT_DISABLE_OFFSET while the idle task runs).
    preempt_count_base: u32,
    /// Host: extensions granted so far; wraps.
    extensions_granted: u32,
    /// Host: 1 while the vCPU is scheduled out although runnable.
    vcpu_preempted: u8,
    /// Host: 1 if the physical CPU had other runnable tasks at sched-in.
    pcpu_overloaded: u8,
    /// Host: 1 while an extension is in effect; the guest gives it back.
    extension_granted: u8,
    /// Reserved, zero.
    u8_pad: [u8; 1],
    /// Reserved, zero.
    pad: [u32; 7],
}

// The layout, checked at compile time against the numbers the ABI
// documentation gives.
const _: () = assert!(size_of::<KvmEcs>() == 64);
const _: () = assert!(align_of::<KvmEcs>() == 64);
const _: () = assert!(offset_of!(KvmEcs, flags) == 0x00);
const _: () = assert!(offset_of!(KvmEcs, preempt_count_mask) == 0x04);
const _: () = assert!(offset_of!(KvmEcs, preempt_count_gpa_lo) == 0x08);
const _: () = assert!(offset_of!(KvmEcs, preempt_count_gpa_hi) == 0x0c);
const _: () = assert!(offset_of!(KvmEcs, nonpreemptible_count) == 0x10);
const _: () = assert!(offset_of!(KvmEcs, preemptible_count) == 0x14);
const _: () = assert!(offset_of!(KvmEcs, preempt_count_base) == 0x18);
const _: () = assert!(offset_of!(KvmEcs, extensions_granted) == 0x1c);
const _: () = assert!(offset_of!(KvmEcs, vcpu_preempted) == 0x20);
const _: () = assert!(offset_of!(KvmEcs, pcpu_overloaded) == 0x21);
const _: () = assert!(offset_of!(KvmEcs, extension_granted) == 0x22);
const _: () = assert!(offset_of!(KvmEcs, u8_pad) == 0x23);
const _: () = assert!(offset_of!(KvmEcs, pad) == 0x24);
// And against bindgen's reading of the header.
const _: () = assert!(size_of::<KvmEcs>() == size_of::<bindgen_ffi::kvm_ecs>());
const _: () = assert!(align_of::<KvmEcs>() == align_of::<bindgen_ffi::kvm_ecs>());

/// Why a value must not be written to MSR_KVM_ECS: the host injects #GP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsrError {
    /// The area's address is not 64-byte aligned.
    Unaligned { gpa: u64 },
    /// Reserved bits 5:1 are set.
    ReservedBits { bits: u64 },
    /// The address has bits above the guest's MAXPHYADDR.
    BeyondMaxPhysAddr { gpa: u64, maxphyaddr: u32 },
}

impl fmt::Display for MsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaligned { gpa } => {
                write!(f, "eCS area address {gpa:#x} is not 64-byte aligned")
            }
            Self::ReservedBits { bits } => write!(f, "reserved MSR_KVM_ECS bits {bits:#x} are set"),
            Self::BeyondMaxPhysAddr { gpa, maxphyaddr } => {
                write!(
                    f,
                    "eCS area address {gpa:#x} is beyond MAXPHYADDR {maxphyaddr}"
                )
            }
        }
    }
}

impl std::error::Error for MsrError {}

/// A decoded MSR_KVM_ECS value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsMsr {
    pub enabled: bool,
    /// The area's guest physical address (bits 63:6).
    pub gpa: u64,
}

/// The value that enables eCS with the area at `gpa`.
pub fn encode_msr(gpa: u64) -> Result<u64, MsrError> {
    if gpa & !KVM_ECS_GPA_MASK != 0 {
        return Err(MsrError::Unaligned { gpa });
    }
    Ok(gpa | KVM_MSR_ENABLED)
}

/// Check a value written to MSR_KVM_ECS as the host does before it looks at
/// the area: reserved bits, and the address against the guest's MAXPHYADDR
/// while enabled. (Whether the address is in guest RAM only the host knows.)
pub fn validate_msr(value: u64, maxphyaddr: u32) -> Result<EcsMsr, MsrError> {
    let reserved = value & KVM_ECS_RESERVED_MASK;
    if reserved != 0 {
        return Err(MsrError::ReservedBits { bits: reserved });
    }
    let msr = EcsMsr {
        enabled: value & KVM_MSR_ENABLED != 0,
        gpa: value & KVM_ECS_GPA_MASK,
    };
    if msr.enabled && maxphyaddr < 64 && msr.gpa >> maxphyaddr != 0 {
        return Err(MsrError::BeyondMaxPhysAddr {
            gpa: msr.gpa,
            maxphyaddr,
        });
    }
    Ok(msr)
}

/// Why the host refuses to enable eCS with an area's configuration (#GP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// `flags` has bits this ABI version does not define.
    UnknownFlags { flags: u32 },
    /// Without KVM_ECS_F_PREEMPT_COUNT, the mask and address must be zero.
    PreemptCountFieldsWithoutFlag,
    /// With KVM_ECS_F_PREEMPT_COUNT, the mask must not be zero.
    ZeroPreemptCountMask,
    /// With KVM_ECS_F_PREEMPT_COUNT, the counter word must be 4-byte aligned.
    UnalignedPreemptCount { gpa: u64 },
    /// A reserved byte is not zero.
    ReservedNotZero,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFlags { flags } => write!(f, "unknown eCS flags {flags:#x}"),
            Self::PreemptCountFieldsWithoutFlag => {
                write!(
                    f,
                    "preempt_count mask or address set without KVM_ECS_F_PREEMPT_COUNT"
                )
            }
            Self::ZeroPreemptCountMask => write!(f, "KVM_ECS_F_PREEMPT_COUNT with a zero mask"),
            Self::UnalignedPreemptCount { gpa } => {
                write!(f, "preempt_count address {gpa:#x} is not 4-byte aligned")
            }
            Self::ReservedNotZero => write!(f, "reserved bytes of struct kvm_ecs are not zero"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The mask a guest writes to `preempt_count_mask`: the low 32 bits of
/// `!PREEMPT_NEED_RESCHED`. x86 keeps that bit inverted in the counter, as
/// bit 31 of a 32-bit counter (mask 0x7fff_ffff) or bit 63 of a 64-bit one
/// (mask 0xffff_ffff: every bit of the low word counts).
pub const fn preempt_count_mask(preempt_need_resched: u64) -> u32 {
    !preempt_need_resched as u32
}

impl KvmEcs {
    /// An all-zero area, as the guest must present it before filling in the
    /// configuration.
    pub const fn zeroed() -> Self {
        Self {
            flags: 0,
            preempt_count_mask: 0,
            preempt_count_gpa_lo: 0,
            preempt_count_gpa_hi: 0,
            nonpreemptible_count: 0,
            preemptible_count: 0,
            preempt_count_base: 0,
            extensions_granted: 0,
            vcpu_preempted: 0,
            pcpu_overloaded: 0,
            extension_granted: 0,
            u8_pad: [0; 1],
            pad: [0; 7],
        }
    }

    /// The preemption counter word's address, from its two halves.
    pub const fn preempt_count_gpa(&self) -> u64 {
        (self.preempt_count_gpa_hi as u64) << 32 | self.preempt_count_gpa_lo as u64
    }

    /// Register the guest's preemption counter word (configuration; before
    /// enabling).
    pub fn set_preempt_count(&mut self, gpa: u64, mask: u32) {
        self.flags |= KVM_ECS_F_PREEMPT_COUNT;
        self.preempt_count_mask = mask;
        self.preempt_count_gpa_lo = gpa as u32;
        self.preempt_count_gpa_hi = (gpa >> 32) as u32;
    }

    /// The checks the host makes on the configuration when the guest
    /// enables eCS.
    pub fn validate_config(&self) -> Result<(), ConfigError> {
        if self.u8_pad.iter().any(|&b| b != 0) || self.pad.iter().any(|&w| w != 0) {
            return Err(ConfigError::ReservedNotZero);
        }
        let unknown = self.flags & !KVM_ECS_KNOWN_FLAGS;
        if unknown != 0 {
            return Err(ConfigError::UnknownFlags { flags: unknown });
        }
        let gpa = self.preempt_count_gpa();
        if self.flags & KVM_ECS_F_PREEMPT_COUNT == 0 {
            if self.preempt_count_mask != 0 || gpa != 0 {
                return Err(ConfigError::PreemptCountFieldsWithoutFlag);
            }
        } else if self.preempt_count_mask == 0 {
            return Err(ConfigError::ZeroPreemptCountMask);
        } else if !gpa.is_multiple_of(4) {
            return Err(ConfigError::UnalignedPreemptCount { gpa });
        }
        Ok(())
    }

    /// The host's test: is the vCPU in a critical section? `preempt_word`
    /// is the 32-bit word at the registered counter address, if the host
    /// read it.
    pub fn in_critical_section(&self, preempt_word: Option<u32>) -> bool {
        if self.nonpreemptible_count != 0 || self.preemptible_count != 0 {
            return true;
        }
        match preempt_word {
            Some(word) if self.flags & KVM_ECS_F_PREEMPT_COUNT != 0 => {
                word & self.preempt_count_mask != self.preempt_count_base
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // x86's PREEMPT_NEED_RESCHED: MSB of the counter (arch/x86/include/asm/preempt.h).
    const NEED_RESCHED_64: u64 = 1 << 63;
    const NEED_RESCHED_32: u64 = 1 << 31;

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
    fn msr_masks_partition_the_value() {
        assert_eq!(KVM_ECS_GPA_MASK & KVM_ECS_RESERVED_MASK, 0);
        assert_eq!(KVM_ECS_GPA_MASK & KVM_MSR_ENABLED, 0);
        assert_eq!(KVM_ECS_RESERVED_MASK & KVM_MSR_ENABLED, 0);
        assert_eq!(
            KVM_ECS_GPA_MASK | KVM_ECS_RESERVED_MASK | KVM_MSR_ENABLED,
            u64::MAX
        );
        assert_eq!(KVM_ECS_RESERVED_MASK, 0b11_1110);
        assert_eq!(1u64 << KVM_ECS_ALIGNMENT_BITS, align_of::<KvmEcs>() as u64);
    }

    #[test]
    fn msr_and_feature_bit_are_in_their_ranges() {
        assert_eq!(MSR_KVM_ECS >> 8, 0x4b_564d, "KVM's paravirt MSR range");
        // Upstream uses 0x00-0x08 and, internally, 0xff.
        assert!((0x09..0xff).contains(&(MSR_KVM_ECS & 0xff)));
        // Bits 0-17 are upstream's, 24-31 belong to pvclock.
        assert!((18..24).contains(&KVM_FEATURE_ECS));
    }

    #[test]
    fn encode_accepts_aligned_and_rejects_unaligned() {
        assert_eq!(encode_msr(0x1234_5680), Ok(0x1234_5681));
        assert_eq!(
            encode_msr(0x1234_5690),
            Err(MsrError::Unaligned { gpa: 0x1234_5690 })
        );
        assert_eq!(encode_msr(0x41), Err(MsrError::Unaligned { gpa: 0x41 }));
    }

    #[test]
    fn validate_roundtrips_encode() {
        let v = encode_msr(0x7fff_ffc0).unwrap();
        assert_eq!(
            validate_msr(v, 52),
            Ok(EcsMsr {
                enabled: true,
                gpa: 0x7fff_ffc0
            })
        );
        assert_eq!(
            validate_msr(0, 52),
            Ok(EcsMsr {
                enabled: false,
                gpa: 0
            })
        );
    }

    #[test]
    fn validate_rejects_each_reserved_bit() {
        for bit in 1..KVM_ECS_ALIGNMENT_BITS {
            let v = 0x1000 | KVM_MSR_ENABLED | 1 << bit;
            assert_eq!(
                validate_msr(v, 52),
                Err(MsrError::ReservedBits { bits: 1 << bit }),
                "bit {bit}"
            );
            // Reserved even while disabled.
            assert!(validate_msr(1 << bit, 52).is_err(), "bit {bit} disabled");
        }
    }

    #[test]
    fn validate_rejects_addresses_beyond_maxphyaddr() {
        let v = encode_msr(1 << 52).unwrap();
        assert_eq!(
            validate_msr(v, 52),
            Err(MsrError::BeyondMaxPhysAddr {
                gpa: 1 << 52,
                maxphyaddr: 52
            })
        );
        assert!(validate_msr(v, 53).is_ok());
        // A disabled value's address is not looked at.
        assert!(validate_msr(1 << 52, 52).is_ok());
    }

    #[test]
    fn mask_drops_x86_inverted_need_resched() {
        // 64-bit counter: the bit is in the high word, all of the low counts.
        assert_eq!(preempt_count_mask(NEED_RESCHED_64), 0xffff_ffff);
        // 32-bit counter: bit 31 must go.
        assert_eq!(preempt_count_mask(NEED_RESCHED_32), 0x7fff_ffff);
    }

    fn with_preempt_count() -> KvmEcs {
        let mut e = KvmEcs::zeroed();
        e.set_preempt_count(0x1_2345_6788, preempt_count_mask(NEED_RESCHED_32));
        e
    }

    #[test]
    fn config_of_a_zeroed_area_is_valid() {
        assert_eq!(KvmEcs::zeroed(), KvmEcs::default());
        assert_eq!(KvmEcs::zeroed().validate_config(), Ok(()));
        let e = with_preempt_count();
        assert_eq!(e.preempt_count_gpa(), 0x1_2345_6788);
        assert_eq!(e.validate_config(), Ok(()));
    }

    #[test]
    fn config_rejects_unknown_flags_and_reserved_bytes() {
        let mut e = KvmEcs::zeroed();
        e.flags = 1 << 5;
        assert_eq!(
            e.validate_config(),
            Err(ConfigError::UnknownFlags { flags: 1 << 5 })
        );
        let mut e = KvmEcs::zeroed();
        e.pad[6] = 1;
        assert_eq!(e.validate_config(), Err(ConfigError::ReservedNotZero));
        let mut e = KvmEcs::zeroed();
        e.u8_pad[0] = 1;
        assert_eq!(e.validate_config(), Err(ConfigError::ReservedNotZero));
    }

    #[test]
    fn config_rejects_inconsistent_preempt_count_fields() {
        let mut e = with_preempt_count();
        e.flags = 0;
        assert_eq!(
            e.validate_config(),
            Err(ConfigError::PreemptCountFieldsWithoutFlag)
        );
        let mut e = with_preempt_count();
        e.preempt_count_mask = 0;
        assert_eq!(e.validate_config(), Err(ConfigError::ZeroPreemptCountMask));
        let mut e = with_preempt_count();
        e.preempt_count_gpa_lo |= 2;
        assert_eq!(
            e.validate_config(),
            Err(ConfigError::UnalignedPreemptCount { gpa: 0x1_2345_678a })
        );
    }

    #[test]
    fn counters_mark_a_critical_section() {
        let mut e = KvmEcs::zeroed();
        assert!(!e.in_critical_section(None));
        e.nonpreemptible_count = 1;
        assert!(e.in_critical_section(None));
        e.nonpreemptible_count = 0;
        e.preemptible_count = 2;
        assert!(e.in_critical_section(None));
    }

    #[test]
    fn preempt_count_word_is_masked_and_compared_with_the_base() {
        let need_resched_clear = NEED_RESCHED_32 as u32; // set = no resched pending
        let mut e = with_preempt_count();
        // Task context, preemption enabled: only the inverted bit is set.
        assert!(!e.in_critical_section(Some(need_resched_clear)));
        // Reschedule pending: the bit is clear; still no critical section.
        assert!(!e.in_critical_section(Some(0)));
        // A spinlock held.
        assert!(e.in_critical_section(Some(need_resched_clear | 1)));
        // A hardirq (HARDIRQ_OFFSET 1 << 24).
        assert!(e.in_critical_section(Some(1 << 24)));
        // The idle task runs with preemption disabled once.
        e.preempt_count_base = 1;
        assert!(!e.in_critical_section(Some(need_resched_clear | 1)));
        assert!(e.in_critical_section(Some(need_resched_clear | 2)));
        assert!(e.in_critical_section(Some(need_resched_clear | 1 | 1 << 24)));
        // Without the flag the word is ignored.
        let e = KvmEcs::zeroed();
        assert!(!e.in_critical_section(Some(5)));
    }
}
