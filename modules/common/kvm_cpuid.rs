// SPDX-License-Identifier: GPL-2.0

//! KVM paravirt discovery through CPUID, shared by our modules (`#[path]`-included by each).

// Each including module uses only part of this file.
#![allow(dead_code)]

use core::arch::x86_64::__cpuid;

/// The hypervisor leaves may be moved up in 0x100 steps (Hyper-V emulation does), which is how
/// the kernel's `kvm_cpuid_base()` searches them.
const HYPERVISOR_LEAVES: core::ops::Range<u32> = 0x4000_0000..0x4001_0000;
const HYPERVISOR_LEAF_STRIDE: usize = 0x100;
const KVM_SIGNATURE: &[u8; 12] = b"KVMKVMKVM\0\0\0";
/// `KVM_CPUID_FEATURES`, relative to the base leaf.
const FEATURES_OFFSET: u32 = 1;
/// CPUID.1:ECX bit 31, set by every hypervisor that admits to being one.
const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;

/// Whether CPUID.1:ECX says a hypervisor is present at all.
pub(crate) fn hypervisor_bit() -> bool {
    __cpuid(1).ecx & CPUID_1_ECX_HYPERVISOR != 0
}

fn signature_at(leaf: u32) -> [u8; 12] {
    let r = __cpuid(leaf);
    let mut sig = [0u8; 12];
    sig[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    sig[4..8].copy_from_slice(&r.ecx.to_le_bytes());
    sig[8..12].copy_from_slice(&r.edx.to_le_bytes());
    sig
}

/// The signature at 0x4000_0000, whichever hypervisor it names; zeroes without a hypervisor.
pub(crate) fn first_signature() -> [u8; 12] {
    // Without the hypervisor bit the 0x4000_0000 range is not defined.
    if hypervisor_bit() {
        signature_at(HYPERVISOR_LEAVES.start)
    } else {
        [0; 12]
    }
}

/// The base leaf of KVM's leaves, if the hypervisor is KVM.
pub(crate) fn kvm_base() -> Option<u32> {
    if !hypervisor_bit() {
        return None;
    }
    HYPERVISOR_LEAVES
        .step_by(HYPERVISOR_LEAF_STRIDE)
        .find(|&leaf| signature_at(leaf) == *KVM_SIGNATURE)
}

/// `KVM_CPUID_FEATURES` of the KVM leaves at `base`: EAX (feature bits) and EDX (hints).
pub(crate) fn kvm_features(base: u32) -> (u32, u32) {
    let r = __cpuid(base + FEATURES_OFFSET);
    (r.eax, r.edx)
}
