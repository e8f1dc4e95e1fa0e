// SPDX-License-Identifier: GPL-2.0

//! Registers the guest's enlightened critical section (eCS) areas with a KVM host that offers them.

use kernel::{
    bindings,
    cpu::CpuId,
    debugfs::Scope,
    error::to_result,
    fmt,
    interrupt::local_interrupt_disable,
    new_mutex, new_spinlock,
    prelude::*,
    static_lock_class,
    sync::{
        atomic::{Atomic, Relaxed},
        rcu, Mutex, SpinLock,
    },
    time::{
        delay::{fsleep, udelay},
        Delta,
    },
    uaccess::UserSliceReader,
};

#[path = "../../common/cpus.rs"]
mod cpus;
use cpus::{cpus_in, online_mask, possible_mask, PossibleCpu};
#[path = "../../common/knob.rs"]
mod knob;
use knob::read_command;
#[path = "../../common/kvm_cpuid.rs"]
mod kvm_cpuid;
#[path = "../../common/kvm_ecs.rs"]
mod kvm_ecs;
use kvm_ecs::{
    pcpu_overcommitted,
    vcpu_preempted,
    Area,
    Counter,
    Counting,
    NonpreemptibleSection,
    OnCpu,
    PreemptCount,
    PreemptibleSection,
    MSR_ENABLED, //
};
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
        self.kvm_features & (1 << kvm_ecs::FEATURE_BIT) != 0
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
// Registration with the host: MSR_KVM_ECS on every online CPU, through CPU hotplug.

/// `MSR_KVM_ECS` and `MSR_KVM_ECS_WORD` writes and the writes the host refused with a #GP.
static MSR_WRITES: Atomic<i32> = Atomic::new(0);
static MSR_ERRORS: Atomic<i32> = Atomic::new(0);

/// Counts a write of either MSR and whether the host refused it.
fn counted(ret: Result) -> Result {
    MSR_WRITES.add(1, Relaxed);
    if ret.is_err() {
        MSR_ERRORS.add(1, Relaxed);
    }
    ret
}

/// Registers the area of `on`'s CPU: with its preemption counter as the word that shows
/// sections if the host accepts it, else without.
fn register(on: &OnCpu) {
    let cpu = on.cpu();
    let Some(area) = Area::of_possible(cpu) else {
        return;
    };
    let Some(gpa) = area.gpa() else {
        pr_err!("cpu {}: area not 64-byte aligned\n", cpu.as_u32());
        return;
    };
    let counter = PreemptCount::of(cpu.id()).and_then(|pc| pc.gpa());
    for word in [counter, None] {
        // SAFETY: We run on the area's CPU (`on`) and the area is not registered: either this
        // CPU just came online or the previous write of `MSR_KVM_ECS` failed.
        unsafe { area.prepare(word.is_some()) };
        let word_ok = match word {
            Some(w) => counted(on.write_word_msr(w | MSR_ENABLED)).is_ok(),
            // Without a word: clear one the first try left registered.
            None => kvm_ecs::word_msr_of(cpu) == 0 || counted(on.write_word_msr(0)).is_ok(),
        };
        if word_ok && counted(on.write_msr(gpa | MSR_ENABLED)).is_ok() {
            return;
        }
        if word.is_none() {
            break;
        }
    }
    pr_warn!("cpu {}: the host refused MSR_KVM_ECS\n", cpu.as_u32());
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
        if let Some(cpu) = CpuId::from_u32(cpu).and_then(PossibleCpu::of) {
            // SAFETY: By the safety requirements we run on `cpu`, in its bound hotplug thread.
            register(&unsafe { OnCpu::new(cpu) });
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
        if let Some(cpu) = CpuId::from_u32(cpu).and_then(PossibleCpu::of) {
            // SAFETY: As for `online`.
            let on = unsafe { OnCpu::new(cpu) };
            // Disabling cannot fail: 0 has no reserved bits. The area goes first, so that the
            // host stops looking at the word before it is unregistered.
            if kvm_ecs::msr_of(cpu) != 0 {
                let _ = counted(on.write_msr(0));
            }
            if kvm_ecs::word_msr_of(cpu) != 0 {
                let _ = counted(on.write_word_msr(0));
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
// The test knob: hold a section for a while and watch the counter.

#[derive(Clone, Copy)]
enum Kind {
    Mutex,
    RwsemRead,
    RwsemWrite,
    Rcu,
    Preemptible,
    Nonpreemptible,
    Spinlock,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Mutex,
        Kind::RwsemRead,
        Kind::RwsemWrite,
        Kind::Rcu,
        Kind::Preemptible,
        Kind::Nonpreemptible,
        Kind::Spinlock,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Mutex => "mutex",
            Kind::RwsemRead => "rwsem_read",
            Kind::RwsemWrite => "rwsem_write",
            Kind::Rcu => "rcu",
            Kind::Preemptible => "preemptible",
            Kind::Nonpreemptible => "nonpreemptible",
            Kind::Spinlock => "spinlock",
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
            Kind::Rcu | Kind::Spinlock => 1_000,
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
    /// A spinlock hold's looks at a waiter's CPU, and those at which its count equalled its base:
    /// the host saw the waiter outside its sections.
    waiter_looks: u32,
    waiter_outside: u32,
}

const RESULTS_KEPT: usize = 8;

/// Tasks about to take or waiting for the test spinlock, and the CPU of the last to announce
/// itself, so that its holder knows when and where a waiter spins.
static SPIN_WAITERS: Atomic<u32> = Atomic::new(0);
static SPIN_WAITER_CPU: Atomic<u32> = Atomic::new(u32::MAX);

/// Busy-waits `ms` milliseconds holding the test spinlock (so on `me`, not preempted), looking
/// once a millisecond at the CPU of a task waiting for it. A waiter holds nothing: the guest
/// shows it outside its sections while it spins (its count equals its base), unless an
/// interrupt is being handled there. Returns the looks and those that found it outside.
fn busy_wait_watching_waiter(ms: u32, me: u32) -> (u32, u32) {
    let (mut looks, mut outside) = (0, 0);
    for _ in 0..ms {
        udelay(Delta::from_millis(1));
        if SPIN_WAITERS.load(Relaxed) == 0 {
            continue;
        }
        let cpu = SPIN_WAITER_CPU.load(Relaxed);
        if cpu == me {
            continue;
        }
        let Some(cpu) = CpuId::from_u32(cpu) else {
            continue;
        };
        let (Some(area), Some(count)) = (Area::of(cpu), PreemptCount::of(cpu)) else {
            continue;
        };
        looks += 1;
        if count.masked() == area.snapshot().base {
            outside += 1;
        }
    }
    (looks, outside)
}

/// The latest holds, oldest first once full.
struct Results {
    ring: [Option<HoldResult>; RESULTS_KEPT],
    next: usize,
}

/// This CPU's counter, read with interrupts off so that the two belong together.
fn sample(which: Counter) -> (u32, u32) {
    let irq = local_interrupt_disable();
    match Area::this_cpu(&irq) {
        Some(area) => (area.cpu().as_u32(), area.count(which)),
        None => (PossibleCpu::current().as_u32(), 0),
    }
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
    spinlock: SpinLock<()>,
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
            spinlock <- new_spinlock!(()),
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
        let (mut waiter_looks, mut waiter_outside) = (0, 0);
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
            Kind::Spinlock => {
                SPIN_WAITER_CPU.store(PossibleCpu::current().as_u32(), Relaxed);
                SPIN_WAITERS.fetch_add(1, Relaxed);
                let _guard = self.spinlock.lock();
                SPIN_WAITERS.fetch_sub(1, Relaxed);
                let (cpu, inside) = sample(which);
                (waiter_looks, waiter_outside) = busy_wait_watching_waiter(ms, cpu);
                (cpu, inside, sample(which).1)
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
            waiter_looks,
            waiter_outside,
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
    writeln!(f, "counting: {}", u8::from(kvm_ecs::counting()))?;
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
        "# cpu nonpreemptible preemptible preempt_count base give_backs \
         vcpu_preempted pcpu_overloaded extension_granted msr word_msr"
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
            " {} {} {} {} {} {:#x} {:#x}",
            s.base,
            kvm_ecs::give_backs_of(area.cpu()),
            u8::from(vcpu_preempted(area.cpu())),
            u8::from(pcpu_overcommitted(area.cpu())),
            s.extension_granted,
            area.msr(),
            kvm_ecs::word_msr_of(area.cpu())
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
            "kind={} ms={} before={} inside={} after_wait={} after={} cpu_inside={} cpu_after={} \
             waiter_looks={} waiter_outside={}",
            r.kind.name(),
            r.ms,
            r.before,
            r.inside,
            r.after_wait,
            r.after,
            r.cpu_inside,
            r.cpu_after,
            r.waiter_looks,
            r.waiter_outside
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
        if kvm_ecs::counting() {
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
