// SPDX-License-Identifier: GPL-2.0

//! Reports which KVM paravirtual features this guest is offered, through debugfs.

use core::fmt;
use kernel::{debugfs::Dir, prelude::*};

#[path = "../../common/kvm_cpuid.rs"]
mod kvm_cpuid;

module! {
    type: PvInfo,
    name: "ecs_pvinfo",
    authors: ["eCS suite developers"],
    description: "Report the KVM paravirtual features a guest sees",
    license: "GPL",
}

/// Bit numbers of `KVM_CPUID_FEATURES` EAX, from
/// arch/x86/include/uapi/asm/kvm_para.h.
const KVM_FEATURES: &[(u32, &str)] = &[
    (0, "CLOCKSOURCE"),
    (1, "NOP_IO_DELAY"),
    (2, "MMU_OP"),
    (3, "CLOCKSOURCE2"),
    (4, "ASYNC_PF"),
    (5, "STEAL_TIME"),
    (6, "PV_EOI"),
    (7, "PV_UNHALT"),
    (9, "PV_TLB_FLUSH"),
    (10, "ASYNC_PF_VMEXIT"),
    (11, "PV_SEND_IPI"),
    (12, "POLL_CONTROL"),
    (13, "PV_SCHED_YIELD"),
    (14, "ASYNC_PF_INT"),
    (15, "MSI_EXT_DEST_ID"),
    (16, "HC_MAP_GPA_RANGE"),
    (17, "MIGRATION_CONTROL"),
    (24, "CLOCKSOURCE_STABLE_BIT"),
];

/// What CPUID says about the hypervisor, read once at load.
struct PvReport {
    /// Whether CPUID.1:ECX says a hypervisor is present at all.
    hypervisor_bit: bool,
    /// Signature at 0x4000_0000, whichever hypervisor it names.
    first_signature: [u8; 12],
    /// Base leaf of KVM's leaves, if KVM is found.
    kvm_base: Option<u32>,
    /// `KVM_CPUID_FEATURES` EAX (feature bits) and EDX (hints).
    kvm_features: u32,
    kvm_hints: u32,
}

impl PvReport {
    fn read() -> Self {
        let kvm_base = kvm_cpuid::kvm_base();
        let (kvm_features, kvm_hints) = kvm_base.map_or((0, 0), kvm_cpuid::kvm_features);
        Self {
            hypervisor_bit: kvm_cpuid::hypervisor_bit(),
            first_signature: kvm_cpuid::first_signature(),
            kvm_base,
            kvm_features,
            kvm_hints,
        }
    }

    fn has(&self, bit: u32) -> bool {
        self.kvm_features & (1 << bit) != 0
    }
}

/// Prints the signature's printable bytes, so "KVMKVMKVM\0\0\0" reads as KVMKVMKVM.
struct Signature<'a>(&'a [u8; 12]);

impl fmt::Display for Signature<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|&b| b == 0) {
            return f.write_str("none");
        }
        for &b in self.0.iter().filter(|&&b| b != 0) {
            let c = if b.is_ascii_graphic() { b as char } else { '?' };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

// `pr_info!` formats through the kernel's own `Display`.
impl kernel::fmt::Display for Signature<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The debugfs `features` file: `key: value` lines, one per feature.
fn show_report(report: &PvReport, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "hypervisor_bit: {}", u8::from(report.hypervisor_bit))?;
    writeln!(f, "signature: {}", Signature(&report.first_signature))?;
    match report.kvm_base {
        Some(base) => writeln!(f, "kvm_base: {base:#x}")?,
        None => writeln!(f, "kvm_base: none")?,
    }
    writeln!(f, "kvm_features: {:#010x}", report.kvm_features)?;
    writeln!(f, "kvm_hints: {:#010x}", report.kvm_hints)?;
    for &(bit, name) in KVM_FEATURES {
        writeln!(f, "KVM_FEATURE_{name}: {}", u8::from(report.has(bit)))?;
    }
    Ok(())
}

#[pin_data]
struct PvInfo {
    _dir: Dir,
    #[pin]
    _report: kernel::debugfs::File<PvReport>,
}

impl kernel::InPlaceModule for PvInfo {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let report = PvReport::read();
        match report.kvm_base {
            Some(base) => pr_info!("KVM at {base:#x}, features {:#010x}\n", report.kvm_features),
            None => pr_info!(
                "no KVM paravirt interface (signature: {})\n",
                Signature(&report.first_signature)
            ),
        }
        let dir = Dir::new(c"ecs_pvinfo");
        try_pin_init!(Self {
            _report <- dir.read_callback_file(c"features", report, &show_report),
            _dir: dir,
        })
    }
}
