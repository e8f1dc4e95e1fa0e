// SPDX-License-Identifier: GPL-2.0

//! The guest's eCS interface (`include/linux/kvm_ecs.h`, guest-patches/0002) as safe functions,
//! shared by our modules (`#[path]`-included by each, with `cpus.rs`).
//!
//! Sections and the host's hints are for every module; turning the counting on, the per-CPU
//! areas and `MSR_KVM_ECS` are for the shim (`modules/guest/ecs`) alone.

// Each including module uses only part of this file.
#![allow(dead_code)]

use super::cpus::PossibleCpu;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    cpu::CpuId,
    error::to_result,
    ffi::c_int,
    interrupt::LocalInterruptDisabled,
    prelude::*,
    types::NotThreadSafe, //
};

// ---------------------------------------------------------------------------
// Sections and the host's hints, for every module.

/// Whether `kvm_ecs_key` is on: the hooks in the lock paths count sections.
pub(crate) fn counting() -> bool {
    // SAFETY: `kvm_ecs_key` is a static of the kernel, which outlives every module;
    // `static_key_count()` only reads its count atomically.
    unsafe { bindings::static_key_count(&raw mut bindings::kvm_ecs_key.key) > 0 }
}

/// The value this guest last wrote to `cpu`'s `MSR_KVM_ECS`: 0 while that CPU's area is not
/// registered with the host.
pub(crate) fn msr_of(cpu: PossibleCpu) -> u64 {
    // SAFETY: `cpu` is possible (type invariant), so its per-CPU copy of the MSR exists; the
    // function reads it once.
    unsafe { bindings::kvm_ecs_msr_of(cpu.as_u32()) }
}

/// The value this guest last wrote to `cpu`'s `MSR_KVM_ECS_WORD`: 0 while no word is registered.
pub(crate) fn word_msr_of(cpu: PossibleCpu) -> u64 {
    // SAFETY: As for `msr_of`.
    unsafe { bindings::kvm_ecs_word_msr_of(cpu.as_u32()) }
}

/// How many extensions `cpu` gave back to the host (`KVM_ECS_GIVE_BACK` writes).
pub(crate) fn give_backs_of(cpu: PossibleCpu) -> usize {
    // SAFETY: As for `msr_of`.
    unsafe { bindings::kvm_ecs_give_backs_of(cpu.as_u32()) }
}

/// The host's hint that `cpu`'s vCPU is preempted now; false unless its area is registered.
pub(crate) fn vcpu_preempted(cpu: PossibleCpu) -> bool {
    // SAFETY: `cpu` is possible (type invariant), so its per-CPU area exists; the function reads
    // one byte of it once. A `u32` below `nr_cpu_ids` fits in a C `int`.
    unsafe { bindings::__kvm_ecs_is_vcpu_preempted(cpu.as_u32() as c_int) }
}

/// The host's hint that other tasks share `cpu`'s physical CPU; false unless its area is
/// registered.
pub(crate) fn pcpu_overcommitted(cpu: PossibleCpu) -> bool {
    // SAFETY: As for `vcpu_preempted`.
    unsafe { bindings::__kvm_ecs_is_pcpu_overcommitted(cpu.as_u32() as c_int) }
}

/// A section counted in this task's `preemptible_count` (Kashyap et al., Table 1,
/// `activate_preemptible`); it ends when dropped.
///
/// The count belongs to the task (the scheduler saves and restores it), so the guard stays on
/// the task that made it.
pub(crate) struct PreemptibleSection(NotThreadSafe);

impl PreemptibleSection {
    /// Enters the section; a no-op while the counting is off.
    #[inline]
    pub(crate) fn enter() -> Self {
        // SAFETY: No precondition: the function counts for the current task, and only while the
        // key is on.
        unsafe { bindings::__kvm_ecs_activate_preemptible() };
        Self(NotThreadSafe)
    }
}

impl Drop for PreemptibleSection {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: Matches the `activate` of `enter`, on the same task: the guard is not `Send`.
        unsafe { bindings::__kvm_ecs_deactivate_preemptible() };
    }
}

/// A section counted in this CPU's `nonpreemptible_count`; it ends when dropped.
///
/// That counter belongs to the vCPU, so the section may not migrate: it borrows the proof that
/// interrupts, and with them preemption, are off.
pub(crate) struct NonpreemptibleSection<'a>(PhantomData<&'a LocalInterruptDisabled>);

impl<'a> NonpreemptibleSection<'a> {
    /// Enters the section; a no-op while the counting is off.
    pub(crate) fn enter(_irq: &'a LocalInterruptDisabled) -> Self {
        // SAFETY: No precondition: the function counts for the current CPU, and only while the
        // key is on.
        unsafe { bindings::__kvm_ecs_activate_nonpreemptible() };
        Self(PhantomData)
    }
}

impl Drop for NonpreemptibleSection<'_> {
    fn drop(&mut self) {
        // SAFETY: Matches the `activate` of `enter`, on the same CPU: interrupts stayed off
        // for the borrow's lifetime.
        unsafe { bindings::__kvm_ecs_deactivate_nonpreemptible() };
    }
}

// ---------------------------------------------------------------------------
// The ABI (arch/x86/include/uapi/asm/kvm_para.h, through bindgen).

/// `KVM_FEATURE_ECS`: the bit of `KVM_CPUID_FEATURES` EAX that offers eCS.
pub(crate) const FEATURE_BIT: u32 = bindings::KVM_FEATURE_ECS;
/// `KVM_ECS_GPA_MASK`: bits 63:6 of `MSR_KVM_ECS` hold the area's address.
pub(crate) const GPA_MASK: u64 = !0 << bindings::KVM_ECS_ALIGNMENT_BITS;
/// `KVM_ECS_WORD_GPA_MASK`: bits 63:2 of `MSR_KVM_ECS_WORD` hold the word's address.
pub(crate) const WORD_GPA_MASK: u64 = !3;
/// `KVM_MSR_ENABLED`, bit 0 of `MSR_KVM_ECS`.
pub(crate) const MSR_ENABLED: u64 = bindings::KVM_MSR_ENABLED as u64;
/// Bits of the preemption counter's low word that count sections (`~PREEMPT_NEED_RESCHED`).
pub(crate) const PREEMPT_COUNT_MASK: u32 = bindings::KVM_ECS_PREEMPT_COUNT_MASK;

const _: () = {
    assert!(size_of::<bindings::kvm_ecs>() == 64);
    assert!(align_of::<bindings::kvm_ecs>() == 64);
    assert!(core::mem::offset_of!(bindings::kvm_ecs, preemptible_count) == 0x04);
    assert!(core::mem::offset_of!(bindings::kvm_ecs, word_base) == 0x0c);
    assert!(core::mem::offset_of!(bindings::kvm_ecs, extension_granted) == 0x12);
    assert!(GPA_MASK & bindings::KVM_ECS_RESERVED_MASK as u64 == 0);
    assert!(GPA_MASK & MSR_ENABLED == 0);
    assert!(WORD_GPA_MASK & (bindings::KVM_ECS_WORD_RESERVED_MASK as u64 | MSR_ENABLED) == 0);
};

// ---------------------------------------------------------------------------
// The per-CPU areas and the preemption counters.

/// The two section counters of an area.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    Preemptible,
    Nonpreemptible,
}

/// One CPU's `struct kvm_ecs`, which the kernel defines (`kvm_ecs_area`).
///
/// # Invariants
///
/// `ptr` is the area of `cpu`, from `kvm_ecs_area_of()`. Per-CPU memory lives as long as the
/// kernel.
#[derive(Clone, Copy)]
pub(crate) struct Area {
    cpu: PossibleCpu,
    ptr: NonNull<bindings::kvm_ecs>,
}

/// An area's fields, each read once.
pub(crate) struct AreaSnapshot {
    pub(crate) nonpreemptible: u32,
    pub(crate) preemptible: u32,
    pub(crate) base: u32,
    pub(crate) extension_granted: u8,
}

impl Area {
    pub(crate) fn of(cpu: CpuId) -> Option<Self> {
        Self::of_possible(PossibleCpu::of(cpu)?)
    }

    pub(crate) fn of_possible(cpu: PossibleCpu) -> Option<Self> {
        // SAFETY: `cpu` is possible, so it has a per-CPU area.
        let ptr = NonNull::new(unsafe { bindings::kvm_ecs_area_of(cpu.as_u32()) })?;
        // INVARIANT: The area of `cpu`.
        Some(Self { cpu, ptr })
    }

    /// The area of the CPU this code runs on; `_irq` keeps it there.
    pub(crate) fn this_cpu(_irq: &LocalInterruptDisabled) -> Option<Self> {
        Self::of_possible(PossibleCpu::current())
    }

    pub(crate) fn snapshot(&self) -> AreaSnapshot {
        let a = self.ptr.as_ptr();
        // SAFETY: By the type invariant `a` is valid and aligned for the kernel's lifetime. Each
        // field is written by single stores of its own size, by the owning vCPU or the host; a
        // volatile read of an aligned field sees one of those values.
        unsafe {
            AreaSnapshot {
                nonpreemptible: (&raw const (*a).nonpreemptible_count).read_volatile(),
                preemptible: (&raw const (*a).preemptible_count).read_volatile(),
                base: (&raw const (*a).word_base).read_volatile(),
                extension_granted: (&raw const (*a).extension_granted).read_volatile(),
            }
        }
    }

    pub(crate) fn count(&self, which: Counter) -> u32 {
        let a = self.ptr.as_ptr();
        // SAFETY: As for `snapshot`.
        unsafe {
            match which {
                Counter::Preemptible => (&raw const (*a).preemptible_count).read_volatile(),
                Counter::Nonpreemptible => (&raw const (*a).nonpreemptible_count).read_volatile(),
            }
        }
    }

    /// The area's CPU.
    pub(crate) fn cpu(&self) -> PossibleCpu {
        self.cpu
    }

    /// The value `MSR_KVM_ECS` last received on this CPU, 0 while it is disabled.
    pub(crate) fn msr(&self) -> u64 {
        msr_of(self.cpu)
    }

    /// Zeroes all 64 bytes.
    ///
    /// # Safety
    ///
    /// The counting must be off and the area not registered with the host: then nobody else
    /// writes it.
    pub(crate) unsafe fn zero(&self) {
        // SAFETY: By the `Area` invariant `ptr` is valid and aligned; by the safety requirements we
        // are its only writer.
        unsafe {
            self.ptr
                .as_ptr()
                .write_volatile(bindings::kvm_ecs::default())
        };
    }

    /// Fills in the word's mask and base (for the preemption counter if `with_word`; the host
    /// reads them only while a word is registered) and clears the host's fields and the reserved
    /// ones, before the area is registered. The two counters are left alone: the counting may be
    /// on, and they describe the running task and this vCPU.
    ///
    /// # Safety
    ///
    /// Must run on the area's CPU (the guest fields have one writer, the owning vCPU), while the
    /// area is not registered with the host (then the host fields are ours too).
    pub(crate) unsafe fn prepare(&self, with_word: bool) {
        let mask = if with_word { PREEMPT_COUNT_MASK } else { 0 };
        let a = self.ptr.as_ptr();
        // SAFETY: By the type invariant `a` is valid and aligned for the kernel's lifetime; by the
        // safety requirements this is the only writer of these fields.
        unsafe {
            (&raw mut (*a).word_mask).write_volatile(mask);
            // We run in the CPU's hotplug thread, not in its idle task.
            (&raw mut (*a).word_base).write_volatile(0);
            (&raw mut (*a).vcpu_preempted).write_volatile(0);
            (&raw mut (*a).pcpu_overloaded).write_volatile(0);
            (&raw mut (*a).extension_granted).write_volatile(0);
            (&raw mut (*a).u8_pad).write_volatile([0; 1]);
            (&raw mut (*a).pad).write_volatile([0; 11]);
        }
    }

    /// The guest physical address of the area, if the host can take it.
    pub(crate) fn gpa(&self) -> Option<u64> {
        // SAFETY: `ptr` is a valid kernel virtual address (per-CPU memory).
        let gpa = unsafe { bindings::slow_virt_to_phys(self.ptr.as_ptr().cast()) };
        (gpa & !GPA_MASK == 0).then_some(gpa)
    }
}

/// Where the host finds one CPU's preemption counter (the low 32 bits of `__preempt_count`).
///
/// # Invariants
///
/// `ptr` comes from `kvm_ecs_preempt_count_of()`: per-CPU memory that lives as long as the kernel.
#[derive(Clone, Copy)]
pub(crate) struct PreemptCount {
    ptr: NonNull<u32>,
}

impl PreemptCount {
    /// `None` where the host must not read the counter (an encrypted guest).
    pub(crate) fn of(cpu: CpuId) -> Option<Self> {
        let cpu = PossibleCpu::of(cpu)?;
        // SAFETY: `cpu` is possible, so its preemption counter exists.
        let ptr = NonNull::new(unsafe { bindings::kvm_ecs_preempt_count_of(cpu.as_u32()) })?;
        // INVARIANT: From `kvm_ecs_preempt_count_of()`.
        Some(Self { ptr })
    }

    /// The guest physical address of the counter's low word, if the host can take it.
    pub(crate) fn gpa(&self) -> Option<u64> {
        // SAFETY: `ptr` is a valid kernel virtual address (per-CPU memory).
        let gpa = unsafe { bindings::slow_virt_to_phys(self.ptr.as_ptr().cast()) };
        (gpa & !WORD_GPA_MASK == 0).then_some(gpa)
    }

    /// The counter's value as the host reads it: the low word, masked.
    pub(crate) fn masked(&self) -> u32 {
        // SAFETY: By the type invariant `ptr` is valid and aligned. The owning CPU updates the
        // counter with single instructions; a volatile read sees one of its values.
        unsafe { self.ptr.as_ptr().read_volatile() & PREEMPT_COUNT_MASK }
    }
}

// ---------------------------------------------------------------------------
// The static key.

/// `kvm_ecs_key`, the kernel's static key that turns the counting hooks on.
///
/// # Invariants
///
/// The key is on while a `Counting` exists. Only the shim (`modules/guest/ecs`) makes one, at
/// most one at a time.
pub(crate) struct Counting(());

impl Counting {
    /// Forgets stale counts, then turns the key on.
    pub(crate) fn start() -> Result<Self> {
        if counting() {
            return Err(EBUSY);
        }
        // SAFETY: The key is off, as `kvm_ecs_reset_counts()` requires; only the shim turns it
        // on, from its module init, which is serialised.
        unsafe { bindings::kvm_ecs_reset_counts() };
        // SAFETY: `kvm_ecs_key` is a static key defined by C; `static_key_enable()` may sleep,
        // which module init may.
        unsafe { bindings::static_key_enable(&raw mut bindings::kvm_ecs_key.key) };
        // INVARIANT: The key is on now.
        Ok(Self(()))
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        // SAFETY: `kvm_ecs_key` is a static key defined by C; this runs in process context at
        // module exit or when init fails, which may sleep.
        unsafe { bindings::static_key_disable(&raw mut bindings::kvm_ecs_key.key) };
    }
}

// ---------------------------------------------------------------------------
// Registration with the host.

/// Proof that the code holding it runs on `cpu` and cannot migrate.
///
/// # Invariants
///
/// The task that made it runs on `cpu` and stays there while the value exists; it is not `Send`.
pub(crate) struct OnCpu {
    cpu: PossibleCpu,
    _not_send: NotThreadSafe,
}

impl OnCpu {
    /// # Safety
    ///
    /// The caller runs on `cpu` and cannot migrate until the value is dropped: a CPU hotplug
    /// callback (cpuhp runs it in the CPU's bound hotplug thread) or code with preemption off.
    pub(crate) unsafe fn new(cpu: PossibleCpu) -> Self {
        // INVARIANT: By the safety requirements.
        Self {
            cpu,
            _not_send: NotThreadSafe,
        }
    }

    pub(crate) fn cpu(&self) -> PossibleCpu {
        self.cpu
    }

    /// Writes `MSR_KVM_ECS` of this CPU; the kernel records the value for the early give-back and
    /// for shutdown. `Err(ENODEV)` if the host lacks eCS, `Err(EIO)` if it refused `val` with a
    /// #GP.
    pub(crate) fn write_msr(&self, val: u64) -> Result {
        // SAFETY: By the type invariant we run on `cpu` and cannot migrate, as
        // `kvm_ecs_write_msr()` requires.
        to_result(unsafe { bindings::kvm_ecs_write_msr(val) })
    }

    /// Writes `MSR_KVM_ECS_WORD` of this CPU, as [`Self::write_msr`] does `MSR_KVM_ECS`.
    pub(crate) fn write_word_msr(&self, val: u64) -> Result {
        // SAFETY: As for `write_msr`: `kvm_ecs_write_word_msr()` has the same requirement.
        to_result(unsafe { bindings::kvm_ecs_write_word_msr(val) })
    }
}
