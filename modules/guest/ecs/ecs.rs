// SPDX-License-Identifier: GPL-2.0

//! Registers the guest's enlightened critical section (eCS) areas with a KVM host that offers them.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    cpu::{nr_cpu_ids, CpuId},
    cpumask::Cpumask,
    debugfs::Scope,
    error::to_result,
    fmt,
    interrupt::{local_interrupt_disable, LocalInterruptDisabled},
    new_mutex,
    prelude::*,
    static_lock_class,
    sync::{
        atomic::{Atomic, Relaxed},
        rcu, Mutex,
    },
    time::{
        delay::{fsleep, udelay},
        Delta,
    },
    uaccess::UserSliceReader,
};

#[path = "../../common/knob.rs"]
mod knob;
use knob::read_command;
#[path = "../../common/kvm_cpuid.rs"]
mod kvm_cpuid;
#[path = "../../common/rwsem.rs"]
mod rwsem;
use rwsem::RwSem;

module! {
    type: Ecs,
    name: "ecs",
    authors: ["eCS suite developers"],
    description: "eCS shim: registers the enlightened critical section areas with KVM",
    license: "GPL",
    params: {
        count_without_host: bool {
            default: false,
            description: "Test knob: count critical sections on a host without eCS (never writes the MSR)",
        },
    },
}

// ---------------------------------------------------------------------------
// The ABI (arch/x86/include/uapi/asm/kvm_para.h, through bindgen).

/// `KVM_ECS_GPA_MASK`: bits 63:6 of `MSR_KVM_ECS` hold the area's address.
const GPA_MASK: u64 = !0 << bindings::KVM_ECS_ALIGNMENT_BITS;
/// `KVM_MSR_ENABLED`, bit 0 of `MSR_KVM_ECS`.
const MSR_ENABLED: u64 = bindings::KVM_MSR_ENABLED as u64;
/// Bits of the preemption counter's low word that count sections (`~PREEMPT_NEED_RESCHED`).
const PREEMPT_COUNT_MASK: u32 = bindings::KVM_ECS_PREEMPT_COUNT_MASK;

const _: () = {
    assert!(size_of::<bindings::kvm_ecs>() == 64);
    assert!(align_of::<bindings::kvm_ecs>() == 64);
    assert!(core::mem::offset_of!(bindings::kvm_ecs, preemptible_count) == 0x14);
    assert!(core::mem::offset_of!(bindings::kvm_ecs, extension_granted) == 0x22);
    assert!(GPA_MASK & bindings::KVM_ECS_RESERVED_MASK as u64 == 0);
    assert!(GPA_MASK & MSR_ENABLED == 0);
};

// ---------------------------------------------------------------------------
// Discovery: CPUID.

/// What CPUID says about the host, read once at load.
#[derive(Clone, Copy)]
struct HostInfo {
    /// Base leaf of KVM's leaves, if the hypervisor is KVM.
    kvm_base: Option<u32>,
    /// `KVM_CPUID_FEATURES` EAX.
    kvm_features: u32,
}

impl HostInfo {
    fn read() -> Self {
        let kvm_base = kvm_cpuid::kvm_base();
        Self {
            kvm_base,
            kvm_features: kvm_base.map_or(0, |base| kvm_cpuid::kvm_features(base).0),
        }
    }

    fn has_ecs(&self) -> bool {
        self.kvm_features & (1 << bindings::KVM_FEATURE_ECS) != 0
    }
}

/// What the module does on this host.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `KVM_FEATURE_ECS` is absent: nothing is registered, nothing is counted.
    HostLacksEcs,
    /// The host lacks eCS, but `count_without_host` turned the counting on (a test knob).
    CountingWithoutHost,
    /// Every online CPU's area is registered with the host and the counting is on.
    Enabled,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::HostLacksEcs => "host lacks eCS",
            Mode::CountingWithoutHost => "counting without host",
            Mode::Enabled => "enabled",
        }
    }
}

// ---------------------------------------------------------------------------
// The per-CPU areas and the preemption counters.

fn online_mask() -> &'static Cpumask {
    // SAFETY: `__cpu_online_mask` lives as long as the kernel. Read without `cpus_read_lock()`,
    // a concurrent hotplug can only make the answer stale.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) }
}

fn possible_mask() -> &'static Cpumask {
    // SAFETY: As for `online_mask`; the possible mask does not change after boot.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_possible_mask) }
}

/// The CPUs of `mask`, in order.
fn cpus_in(mask: &'static Cpumask) -> impl Iterator<Item = CpuId> {
    (0..nr_cpu_ids())
        .filter_map(CpuId::from_u32)
        .filter(move |&cpu| mask.test(cpu))
}

/// The counters of an area that the test knob can hold up.
#[derive(Clone, Copy)]
enum Counter {
    Preemptible,
    Nonpreemptible,
}

/// One CPU's `struct kvm_ecs`, which the kernel defines (`kvm_ecs_area`).
///
/// # Invariants
///
/// `ptr` is the area of the possible CPU `cpu`, from `kvm_ecs_area_of()`. Per-CPU memory lives as
/// long as the kernel.
#[derive(Clone, Copy)]
struct Area {
    cpu: CpuId,
    ptr: NonNull<bindings::kvm_ecs>,
}

/// An area's fields, each read once.
struct AreaSnapshot {
    nonpreemptible: u32,
    preemptible: u32,
    base: u32,
    extensions_granted: u32,
    extension_granted: u8,
}

/// Reads a field of the area behind a raw pointer once.
macro_rules! read_field {
    ($area:expr, $field:ident) => {
        // SAFETY: By the `Area` invariant the pointer is valid for the kernel's lifetime. The
        // fields are written by single stores of their own size, by the owning vCPU or the host;
        // a volatile read of an aligned field sees one of those values.
        unsafe { (&raw const (*$area.ptr.as_ptr()).$field).read_volatile() }
    };
}

/// Writes a field of the area behind a raw pointer once.
macro_rules! write_field {
    ($area:expr, $field:ident, $value:expr) => {
        // SAFETY: By the `Area` invariant the pointer is valid for the kernel's lifetime; the
        // callers' safety requirements make this the field's only writer.
        unsafe { (&raw mut (*$area.ptr.as_ptr()).$field).write_volatile($value) }
    };
}

impl Area {
    fn of(cpu: CpuId) -> Option<Self> {
        if !possible_mask().test(cpu) {
            return None;
        }
        // SAFETY: `cpu` is a possible CPU, which has a per-CPU area.
        let ptr = NonNull::new(unsafe { bindings::kvm_ecs_area_of(cpu.as_u32()) })?;
        // INVARIANT: The area of the possible CPU `cpu`.
        Some(Self { cpu, ptr })
    }

    /// The area of the CPU this code runs on; `_irq` keeps it there.
    fn this_cpu(_irq: &LocalInterruptDisabled) -> Self {
        let cpu = CpuId::current();
        // SAFETY: The CPU we run on is possible, so it has a per-CPU area.
        let ptr = unsafe { bindings::kvm_ecs_area_of(cpu.as_u32()) };
        // INVARIANT: `kvm_ecs_area_of()` returns a pointer into the per-CPU area of a possible CPU,
        // which is never null.
        Self {
            cpu,
            // SAFETY: As above, never null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        }
    }

    fn snapshot(&self) -> AreaSnapshot {
        AreaSnapshot {
            nonpreemptible: read_field!(self, nonpreemptible_count),
            preemptible: read_field!(self, preemptible_count),
            base: read_field!(self, preempt_count_base),
            extensions_granted: read_field!(self, extensions_granted),
            extension_granted: read_field!(self, extension_granted),
        }
    }

    fn count(&self, which: Counter) -> u32 {
        match which {
            Counter::Preemptible => read_field!(self, preemptible_count),
            Counter::Nonpreemptible => read_field!(self, nonpreemptible_count),
        }
    }

    /// The value `MSR_KVM_ECS` last received on this CPU, 0 while it is disabled.
    fn msr(&self) -> u64 {
        // SAFETY: `cpu` is a possible CPU.
        unsafe { bindings::kvm_ecs_msr_of(self.cpu.as_u32()) }
    }

    /// Zeroes all 64 bytes.
    ///
    /// # Safety
    ///
    /// The counting must be off and the area not registered with the host: then nobody else
    /// writes it.
    unsafe fn zero(&self) {
        // SAFETY: By the `Area` invariant `ptr` is valid and aligned; by the safety requirements we
        // are its only writer.
        unsafe {
            self.ptr
                .as_ptr()
                .write_volatile(bindings::kvm_ecs::default())
        };
    }

    /// Fills in the configuration and clears the host's fields and the reserved ones, before the
    /// area is registered. The two counters are left alone: the counting may be on, and they
    /// describe the running task and this vCPU.
    ///
    /// # Safety
    ///
    /// Must run on the area's CPU (the guest fields have one writer, the owning vCPU), while the
    /// area is not registered with the host (then the host fields are ours too).
    unsafe fn configure(&self, preempt_count: Option<PreemptCount>) {
        let (flags, mask, gpa) = match preempt_count {
            Some(pc) => (
                bindings::KVM_ECS_F_PREEMPT_COUNT,
                PREEMPT_COUNT_MASK,
                pc.gpa(),
            ),
            None => (0, 0, 0),
        };
        write_field!(self, flags, flags);
        write_field!(self, preempt_count_mask, mask);
        write_field!(self, preempt_count_gpa_lo, gpa as u32);
        write_field!(self, preempt_count_gpa_hi, (gpa >> 32) as u32);
        // We run in the CPU's hotplug thread, not in its idle task.
        write_field!(self, preempt_count_base, 0);
        write_field!(self, extensions_granted, 0);
        write_field!(self, vcpu_preempted, 0);
        write_field!(self, pcpu_overloaded, 0);
        write_field!(self, extension_granted, 0);
        write_field!(self, u8_pad, [0; 1]);
        write_field!(self, pad, [0; 7]);
    }

    /// The guest physical address of the area, if the host can take it.
    fn gpa(&self) -> Option<u64> {
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
struct PreemptCount {
    ptr: NonNull<u32>,
}

impl PreemptCount {
    /// `None` where the host must not read the counter (an encrypted guest).
    fn of(cpu: CpuId) -> Option<Self> {
        if !possible_mask().test(cpu) {
            return None;
        }
        // SAFETY: `cpu` is a possible CPU.
        let ptr = NonNull::new(unsafe { bindings::kvm_ecs_preempt_count_of(cpu.as_u32()) })?;
        // INVARIANT: From `kvm_ecs_preempt_count_of()`.
        Some(Self { ptr })
    }

    fn gpa(&self) -> u64 {
        // SAFETY: `ptr` is a valid kernel virtual address (per-CPU memory).
        unsafe { bindings::slow_virt_to_phys(self.ptr.as_ptr().cast()) }
    }

    /// The counter's value as the host reads it: the low word, masked.
    fn masked(&self) -> u32 {
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
/// The key is on while a `Counting` exists. This module is the key's only user and makes at
/// most one at a time.
struct Counting(());

impl Counting {
    /// `static_key_enabled(&kvm_ecs_key)`.
    fn is_on() -> bool {
        // SAFETY: The key is a static defined by C that lives forever, and C only accesses its
        // `enabled` count atomically.
        let enabled =
            unsafe { Atomic::from_ptr(&raw mut bindings::kvm_ecs_key.key.enabled.counter) };
        enabled.load(Relaxed) > 0
    }

    /// Forgets stale counts, then turns the key on.
    fn start() -> Result<Self> {
        if Self::is_on() {
            return Err(EBUSY);
        }
        // SAFETY: The key is off, as `kvm_ecs_reset_counts()` requires; only this module turns it
        // on, and module init is serialised.
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
// Registration with the host: MSR_KVM_ECS on every online CPU, through CPU hotplug.

/// `MSR_KVM_ECS` writes and the writes the host refused with a #GP.
static MSR_WRITES: Atomic<i32> = Atomic::new(0);
static MSR_ERRORS: Atomic<i32> = Atomic::new(0);

/// The CPU that one of this module's hotplug callbacks runs on.
///
/// # Invariants
///
/// Only exists inside `Hotplug::online` and `Hotplug::offline` for their CPU `cpu`: cpuhp runs
/// them on that CPU, in its hotplug thread, which is bound to it.
struct OnCpu {
    cpu: CpuId,
    _not_send: PhantomData<*mut ()>,
}

impl OnCpu {
    /// Writes `MSR_KVM_ECS` of this CPU; the kernel records the value for the early give-back and
    /// for shutdown. `Err(EIO)` if the host refused it with a #GP.
    fn write_msr(&self, val: u64) -> Result {
        MSR_WRITES.add(1, Relaxed);
        // SAFETY: By the type invariant we run on `cpu` and cannot migrate, as
        // `kvm_ecs_write_msr()` requires.
        let ret = to_result(unsafe { bindings::kvm_ecs_write_msr(val) });
        if ret.is_err() {
            MSR_ERRORS.add(1, Relaxed);
        }
        ret
    }

    /// Registers this CPU's area: with the preemption counter if the host accepts it, else
    /// without (the host refuses a flag it does not know with a #GP).
    fn register(&self) {
        let Some(area) = Area::of(self.cpu) else {
            return;
        };
        let Some(gpa) = area.gpa() else {
            pr_err!("cpu {}: area not 64-byte aligned\n", self.cpu.as_u32());
            return;
        };
        for pc in [PreemptCount::of(self.cpu), None] {
            // SAFETY: We run on the area's CPU (type invariant) and the area is not registered:
            // either this CPU just came online or the previous write failed.
            unsafe { area.configure(pc) };
            if self.write_msr(gpa | MSR_ENABLED).is_ok() {
                return;
            }
            if pc.is_none() {
                break;
            }
        }
        pr_warn!("cpu {}: the host refused MSR_KVM_ECS\n", self.cpu.as_u32());
    }
}

/// A dynamic CPU hotplug state that registers each online CPU's area with the host and
/// unregisters it when the CPU goes offline.
///
/// # Invariants
///
/// `state` was returned by `__cpuhp_setup_state()` for `Self::online` and `Self::offline` and
/// has not been removed.
struct Hotplug {
    state: bindings::cpuhp_state,
}

impl Hotplug {
    /// Runs `online` on every online CPU now, and on every CPU that comes online later.
    fn register() -> Result<Self> {
        // SAFETY: The name is static. The callbacks are functions of this module, which `drop`
        // removes, running `offline` on every online CPU, before the module goes.
        let ret = unsafe {
            bindings::__cpuhp_setup_state(
                bindings::cpuhp_state_CPUHP_AP_ONLINE_DYN,
                c"ecs:online".as_char_ptr(),
                true,
                Some(Self::online),
                Some(Self::offline),
                false,
            )
        };
        to_result(ret)?;
        // INVARIANT: A dynamic state comes back as a positive number.
        Ok(Self { state: ret })
    }

    /// Registers the area of `cpu` as it comes online.
    ///
    /// # Safety
    ///
    /// Only cpuhp may call it: it runs AP online callbacks on `cpu`, in its hotplug thread.
    unsafe extern "C" fn online(cpu: c_uint) -> c_int {
        if let Some(cpu) = CpuId::from_u32(cpu) {
            // INVARIANT: By the safety requirements we run on `cpu`, in its bound hotplug thread.
            OnCpu {
                cpu,
                _not_send: PhantomData,
            }
            .register();
        }
        // A CPU the host refuses still comes online, unregistered.
        0
    }

    /// Unregisters the area of `cpu` as it goes offline, and at unload.
    ///
    /// # Safety
    ///
    /// As for [`Self::online`].
    unsafe extern "C" fn offline(cpu: c_uint) -> c_int {
        if let Some(cpu) = CpuId::from_u32(cpu) {
            // INVARIANT: As for `online`.
            let on = OnCpu {
                cpu,
                _not_send: PhantomData,
            };
            if Area::of(cpu).is_some_and(|area| area.msr() != 0) {
                // Disabling cannot fail: 0 has no reserved bits.
                let _ = on.write_msr(0);
            }
        }
        0
    }
}

impl Drop for Hotplug {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `state` is ours and still set up. Removing it runs
        // `offline` on every online CPU, and no callback is left that points into this module.
        unsafe { bindings::__cpuhp_remove_state(self.state, true) };
    }
}

/// What is on while the module is loaded. Dropped in field order: first the host stops reading
/// the areas, then the counters stop moving, so the host never reads stale counts.
struct Registration {
    _hotplug: Option<Hotplug>,
    _counting: Counting,
}

// ---------------------------------------------------------------------------
// The guest's eCS API (Kashyap et al., Table 1), through the kernel's out-of-line wrappers.

/// A section counted in this task's `preemptible_count`; ends when dropped.
///
/// The count belongs to the task (the scheduler saves and restores it), so the guard must stay
/// on it.
struct PreemptibleSection(PhantomData<*mut ()>);

impl PreemptibleSection {
    fn enter() -> Self {
        // SAFETY: Always safe to call; a no-op unless the counting is on.
        unsafe { bindings::__kvm_ecs_activate_preemptible() };
        Self(PhantomData)
    }
}

impl Drop for PreemptibleSection {
    fn drop(&mut self) {
        // SAFETY: Matches the `activate` of `enter`, on the same task.
        unsafe { bindings::__kvm_ecs_deactivate_preemptible() };
    }
}

/// A section counted in this CPU's `nonpreemptible_count`; ends when dropped.
///
/// That counter belongs to the vCPU, so the section may not migrate: it borrows the proof that
/// interrupts, and with them preemption, are off.
struct NonpreemptibleSection<'a>(PhantomData<&'a LocalInterruptDisabled>);

impl<'a> NonpreemptibleSection<'a> {
    fn enter(_irq: &'a LocalInterruptDisabled) -> Self {
        // SAFETY: Always safe to call; a no-op unless the counting is on.
        unsafe { bindings::__kvm_ecs_activate_nonpreemptible() };
        Self(PhantomData)
    }
}

impl Drop for NonpreemptibleSection<'_> {
    fn drop(&mut self) {
        // SAFETY: Matches the `activate` of `enter`, on the same CPU (interrupts stayed off).
        unsafe { bindings::__kvm_ecs_deactivate_nonpreemptible() };
    }
}

fn vcpu_preempted(cpu: CpuId) -> bool {
    // SAFETY: Any CPU number below `nr_cpu_ids` is fine; the kernel reads its area.
    unsafe { bindings::__kvm_ecs_is_vcpu_preempted(cpu.into()) }
}

fn pcpu_overcommitted(cpu: CpuId) -> bool {
    // SAFETY: As for `vcpu_preempted`.
    unsafe { bindings::__kvm_ecs_is_pcpu_overcommitted(cpu.into()) }
}

// ---------------------------------------------------------------------------
// The test knob: hold a section for a while and watch the counter.

#[derive(Clone, Copy)]
enum Kind {
    Mutex,
    RwsemRead,
    RwsemWrite,
    Rcu,
    Preemptible,
    Nonpreemptible,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Mutex,
        Kind::RwsemRead,
        Kind::RwsemWrite,
        Kind::Rcu,
        Kind::Preemptible,
        Kind::Nonpreemptible,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Mutex => "mutex",
            Kind::RwsemRead => "rwsem_read",
            Kind::RwsemWrite => "rwsem_write",
            Kind::Rcu => "rcu",
            Kind::Preemptible => "preemptible",
            Kind::Nonpreemptible => "nonpreemptible",
        }
    }

    fn counter(self) -> Counter {
        match self {
            Kind::Nonpreemptible => Counter::Nonpreemptible,
            _ => Counter::Preemptible,
        }
    }

    /// The longest hold: sleeping sections may be long, busy ones not.
    fn max_ms(self) -> u32 {
        match self {
            Kind::Mutex | Kind::RwsemRead | Kind::RwsemWrite | Kind::Preemptible => 10_000,
            Kind::Rcu => 1_000,
            Kind::Nonpreemptible => 50,
        }
    }
}

/// What one hold saw: the counter before, inside, inside after the wait (after a sleep the task
/// may run on another CPU), and after.
#[derive(Clone, Copy)]
struct HoldResult {
    kind: Kind,
    ms: u32,
    before: u32,
    inside: u32,
    after_wait: u32,
    after: u32,
    cpu_inside: u32,
    cpu_after: u32,
}

const RESULTS_KEPT: usize = 8;

/// The latest holds, oldest first once full.
struct Results {
    ring: [Option<HoldResult>; RESULTS_KEPT],
    next: usize,
}

/// This CPU's counter, read with interrupts off so that the two belong together.
fn sample(which: Counter) -> (u32, u32) {
    let irq = local_interrupt_disable();
    let area = Area::this_cpu(&irq);
    (area.cpu.as_u32(), area.count(which))
}

fn busy_wait(ms: u32) {
    for _ in 0..ms {
        udelay(Delta::from_millis(1));
    }
}

fn sleep(ms: u32) {
    fsleep(Delta::from_millis(i64::from(ms)));
}

// ---------------------------------------------------------------------------
// debugfs.

/// Data of the debugfs directory.
#[pin_data]
struct Shim {
    mode: Mode,
    host: HostInfo,
    #[pin]
    mutex: Mutex<()>,
    #[pin]
    rwsem: RwSem,
    #[pin]
    results: Mutex<Results>,
}

impl Shim {
    fn new(mode: Mode, host: HostInfo) -> impl PinInit<Scope<Self>, Error> {
        let shim = try_pin_init!(Self {
            mode,
            host,
            mutex <- new_mutex!(()),
            rwsem <- RwSem::new(c"ecs_test_rwsem", static_lock_class!()),
            results <- new_mutex!(Results {
                ring: [None; RESULTS_KEPT],
                next: 0,
            }),
        }? Error);
        Scope::dir(shim, c"ecs", |shim, dir| {
            dir.read_callback_file(c"state", shim, &show_state);
            dir.read_callback_file(c"cpus", shim, &show_cpus);
            dir.read_write_callback_file(c"hold", shim, &show_holds, &write_hold);
        })
    }

    fn hold(&self, kind: Kind, ms: u32) {
        let which = kind.counter();
        let (_, before) = sample(which);
        let inside_wait = |wait: fn(u32)| {
            let (cpu, inside) = sample(which);
            wait(ms);
            (cpu, inside, sample(which).1)
        };
        let (cpu_inside, inside, after_wait) = match kind {
            Kind::Mutex => {
                let _guard = self.mutex.lock();
                inside_wait(sleep)
            }
            Kind::RwsemRead => {
                let _guard = self.rwsem.read();
                inside_wait(sleep)
            }
            Kind::RwsemWrite => {
                let _guard = self.rwsem.write();
                inside_wait(sleep)
            }
            Kind::Rcu => {
                // Preemptible RCU: the reader may be preempted, not sleep.
                let _guard = rcu::read_lock();
                inside_wait(busy_wait)
            }
            Kind::Preemptible => {
                let _section = PreemptibleSection::enter();
                inside_wait(sleep)
            }
            Kind::Nonpreemptible => {
                let irq = local_interrupt_disable();
                let _section = NonpreemptibleSection::enter(&irq);
                inside_wait(busy_wait)
            }
        };
        let (cpu_after, after) = sample(which);
        let mut results = self.results.lock();
        let slot = results.next;
        results.ring[slot] = Some(HoldResult {
            kind,
            ms,
            before,
            inside,
            after_wait,
            after,
            cpu_inside,
            cpu_after,
        });
        results.next = (slot + 1) % RESULTS_KEPT;
    }
}

fn show_state(shim: &Shim, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "state: {}", shim.mode.name())?;
    match shim.host.kvm_base {
        Some(base) => writeln!(f, "kvm_base: {base:#x}")?,
        None => writeln!(f, "kvm_base: none")?,
    }
    writeln!(f, "kvm_features: {:#010x}", shim.host.kvm_features)?;
    writeln!(f, "KVM_FEATURE_ECS: {}", u8::from(shim.host.has_ecs()))?;
    writeln!(f, "counting: {}", u8::from(Counting::is_on()))?;
    let registered = cpus_in(online_mask())
        .filter(|&cpu| Area::of(cpu).is_some_and(|a| a.msr() != 0))
        .count();
    writeln!(f, "registered_cpus: {registered}")?;
    writeln!(f, "msr_writes: {}", MSR_WRITES.load(Relaxed))?;
    writeln!(f, "msr_errors: {}", MSR_ERRORS.load(Relaxed))
}

/// One line per online CPU, then the reader's own CPU and count (the reader holds the seq_file
/// mutex, which counts on its CPU).
fn show_cpus(_shim: &Shim, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "# cpu nonpreemptible preemptible preempt_count base extensions_granted \
         vcpu_preempted pcpu_overloaded extension_granted msr"
    )?;
    let (self_cpu, self_count) = sample(Counter::Preemptible);
    for cpu in cpus_in(online_mask()) {
        let Some(area) = Area::of(cpu) else {
            continue;
        };
        let s = area.snapshot();
        write!(
            f,
            "cpu{} {} {} ",
            cpu.as_u32(),
            s.nonpreemptible,
            s.preemptible
        )?;
        match PreemptCount::of(cpu) {
            Some(pc) => write!(f, "{}", pc.masked())?,
            None => write!(f, "-")?,
        }
        writeln!(
            f,
            " {} {} {} {} {} {:#x}",
            s.base,
            s.extensions_granted,
            u8::from(vcpu_preempted(cpu)),
            u8::from(pcpu_overcommitted(cpu)),
            s.extension_granted,
            area.msr()
        )?;
    }
    writeln!(f, "self cpu{self_cpu} {self_count}")
}

/// The latest holds, oldest first, one `key=value` line each.
fn show_holds(shim: &Shim, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let results = shim.results.lock();
    for i in 0..RESULTS_KEPT {
        let Some(r) = results.ring[(results.next + i) % RESULTS_KEPT] else {
            continue;
        };
        writeln!(
            f,
            "kind={} ms={} before={} inside={} after_wait={} after={} cpu_inside={} cpu_after={}",
            r.kind.name(),
            r.ms,
            r.before,
            r.inside,
            r.after_wait,
            r.after,
            r.cpu_inside,
            r.cpu_after
        )?;
    }
    Ok(())
}

/// `KIND MS`: hold a section of `KIND` for `MS` milliseconds, then record what the counter did.
fn write_hold(shim: &Shim, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 32];
    let mut words = read_command(reader, &mut buf)?.split_whitespace();
    let name = words.next().ok_or(EINVAL)?;
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or(EINVAL)?;
    let ms = match words.next() {
        Some(w) => w.parse::<u32>().map_err(|_| EINVAL)?,
        None => 0,
    };
    if ms > kind.max_ms() || words.next().is_some() {
        return Err(EINVAL);
    }
    shim.hold(kind, ms);
    Ok(())
}

// ---------------------------------------------------------------------------
// The module.

#[pin_data]
struct Ecs {
    /// Goes first: the host stops reading the areas and the counting stops before debugfs goes.
    _registration: Option<Registration>,
    #[pin]
    _debugfs: Scope<Shim>,
}

impl Ecs {
    fn start(mode: Mode) -> Result<Option<Registration>> {
        if Counting::is_on() {
            return Err(EBUSY);
        }
        for cpu in cpus_in(possible_mask()) {
            if let Some(area) = Area::of(cpu) {
                // SAFETY: The counting is off and this module, not loaded before, registered
                // nothing with the host: nobody else writes the areas.
                unsafe { area.zero() };
            }
        }
        Ok(match mode {
            Mode::HostLacksEcs => None,
            // The key goes on first, so that when each CPU's hotplug thread has registered its
            // area and the CPU goes back to its idle task, the scheduler hook sets the base.
            Mode::CountingWithoutHost => Some(Registration {
                _hotplug: None,
                _counting: Counting::start()?,
            }),
            Mode::Enabled => {
                let counting = Counting::start()?;
                Some(Registration {
                    _hotplug: Some(Hotplug::register()?),
                    _counting: counting,
                })
            }
        })
    }
}

impl kernel::InPlaceModule for Ecs {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let host = HostInfo::read();
        let mode = if host.has_ecs() {
            Mode::Enabled
        } else if module_parameters::count_without_host.value() {
            Mode::CountingWithoutHost
        } else {
            Mode::HostLacksEcs
        };
        match (mode, host.kvm_base) {
            (Mode::Enabled, _) => pr_info!("KVM offers eCS: registering the areas\n"),
            (_, Some(base)) => pr_info!(
                "host lacks eCS (KVM at {base:#x}, features {:#010x}); MSR_KVM_ECS untouched\n",
                host.kvm_features
            ),
            (_, None) => pr_info!("host lacks eCS (not KVM); MSR_KVM_ECS untouched\n"),
        }
        if mode == Mode::CountingWithoutHost {
            pr_info!("count_without_host: counting critical sections for testing only\n");
        }
        try_pin_init!(Self {
            _registration: Self::start(mode)?,
            _debugfs <- Shim::new(mode, host),
        })
    }
}
