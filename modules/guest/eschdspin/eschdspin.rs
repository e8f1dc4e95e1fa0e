// SPDX-License-Identifier: GPL-2.0

//! Scheduling-aware spinning for blocked mutex and rwsem waiters (SCHDSPIN, eSCHDSPIN).

use kernel::{
    bindings,
    debugfs::Scope,
    error::to_result,
    fmt,
    prelude::*,
    processor::cpu_relax,
    sync::atomic::{Atomic, Relaxed},
    time::{Instant, Monotonic},
    uaccess::UserSliceReader,
};

#[path = "../../common/cpus.rs"]
mod cpus;
use cpus::PossibleCpu;
#[path = "../../common/knob.rs"]
mod knob;
use knob::read_command;
#[path = "../../common/kvm_ecs.rs"]
mod kvm_ecs;
#[path = "../../common/param.rs"]
mod param;
use param::in_range;

module! {
    type: Eschdspin,
    name: "eschdspin",
    authors: ["eCS suite developers"],
    description: "Scheduling-aware spinning for blocked mutex and rwsem waiters",
    license: "GPL",
    params: {
        policy: u32 {
            default: 2,
            description: "0 = stock (sleep), 1 = SCHDSPIN, 2 = eSCHDSPIN; debugfs policy changes it",
        },
        fallback: u32 {
            default: 1,
            description: "eSCHDSPIN on a vCPU without eCS: 0 = stock, 1 = SCHDSPIN",
        },
        spin_limit_us: u32 {
            default: 1000,
            description: "Longest spin of one waiter before it sleeps, in microseconds",
        },
    },
}

/// Bounds of `spin_limit_us`: the spin is preemptible, but a waiter should not burn more than a
/// 100 Hz tick.
const MIN_SPIN_US: u32 = 1;
const MAX_SPIN_US: u32 = 10_000;

/// What a blocked waiter does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Sleep, as without the module.
    Stock = 0,
    /// Spin while the guest run queue has no other task and the owner runs on a vCPU that is not
    /// preempted.
    Schdspin = 1,
    /// Spin while, in addition, the host says the physical CPU is not overloaded.
    Eschdspin = 2,
}

impl Policy {
    const ALL: [Policy; 3] = [Policy::Stock, Policy::Schdspin, Policy::Eschdspin];

    fn from_u32(value: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|p| *p as u32 == value)
    }

    fn name(self) -> &'static str {
        match self {
            Policy::Stock => "stock",
            Policy::Schdspin => "schdspin",
            Policy::Eschdspin => "eschdspin",
        }
    }
}

/// Why a waiter did not spin, or stopped spinning.
#[derive(Clone, Copy)]
enum Stop {
    /// The policy is stock.
    Stock,
    /// The CPU should reschedule, or a signal is pending.
    Resched,
    /// Another task is runnable in this guest CPU's run queue.
    RunQueue,
    /// The host says the physical CPU had other tasks when the vCPU was last scheduled in.
    Overloaded,
    /// The owner is not running, or its vCPU is preempted.
    OwnerOff,
    /// The spin reached `spin_limit_us`.
    Limit,
}

const STOPS: usize = 6;
const STOP_NAMES: [&str; STOPS] = [
    "stock",
    "resched",
    "runqueue",
    "overloaded",
    "owner_off",
    "limit",
];

/// Decision counts since load, for all CPUs.
struct Stats {
    /// Waiters that asked, by lock kind (mutex, rwsem reader, rwsem writer).
    waits: [Atomic<u64>; 3],
    /// Waiters that spun.
    spins: Atomic<u64>,
    /// Spins that ended with the lock available: no sleep, no wake-up.
    spin_acquired: Atomic<u64>,
    /// Waiters that slept, with or without spinning first.
    sleeps: Atomic<u64>,
    /// Spins that stopped and slept.
    spin_to_sleep: Atomic<u64>,
    /// Time spent spinning, in ns.
    spin_ns: Atomic<u64>,
    /// Why waiters slept, indexed by [`Stop`].
    stops: [Atomic<u64>; STOPS],
    /// eSCHDSPIN decisions on a vCPU whose host does not share eCS hints: `fallback` applied.
    no_ecs: Atomic<u64>,
}

static STATS: Stats = Stats {
    waits: [const { Atomic::new(0) }; 3],
    spins: Atomic::new(0),
    spin_acquired: Atomic::new(0),
    sleeps: Atomic::new(0),
    spin_to_sleep: Atomic::new(0),
    spin_ns: Atomic::new(0),
    stops: [const { Atomic::new(0) }; STOPS],
    no_ecs: Atomic::new(0),
};

/// The policy and its fallback as `Policy as u32`, and the spin bound; changed at runtime.
static POLICY: Atomic<u32> = Atomic::new(Policy::Stock as u32);
static FALLBACK: Atomic<u32> = Atomic::new(Policy::Schdspin as u32);
static SPIN_LIMIT_NS: Atomic<i64> = Atomic::new(0);

fn bump(counter: &Atomic<u64>) {
    counter.fetch_add(1, Relaxed);
}

fn load_policy(which: &Atomic<u32>) -> Policy {
    Policy::from_u32(which.load(Relaxed)).unwrap_or(Policy::Stock)
}

/// A waiter inside the lock's hook, on its way to sleep.
///
/// # Invariants
///
/// `w` points to the waiter the lock passed to [`wait`], which stays valid while the hook runs;
/// values of this type live only inside one call of [`wait`].
struct Waiter {
    w: *const bindings::lock_spin_waiter,
}

impl Waiter {
    fn kind(&self) -> usize {
        // SAFETY: By the type invariant `w` is valid.
        let kind = unsafe { (*self.w).kind };
        kind as usize
    }

    fn granted(&self) -> bool {
        // SAFETY: By the type invariant `w` is valid and we are inside the hook.
        unsafe { bindings::lock_spin_granted(self.w) }
    }

    fn owner_running(&self) -> bool {
        // SAFETY: As for `granted`; the helper takes the RCU read lock the owner lookup needs.
        unsafe { bindings::lock_spin_owner_running(self.w) }
    }
}

fn must_stop() -> bool {
    // SAFETY: Reads the current task's flags only.
    unsafe { bindings::lock_spin_must_stop() }
}

fn single_task_running() -> bool {
    // SAFETY: Reads the run queue length of the CPU this runs on, with `raw_rq()`: the spin is
    // preemptible, so it may be the CPU it ran on a moment ago, which is good enough for a
    // heuristic.
    unsafe { bindings::single_task_running() }
}

/// The eCS hints the host shares with the vCPU this runs on, if it shares them.
///
/// The spin is preemptible and may move to another vCPU: each question reads the hints of the
/// vCPU it runs on then.
struct HostHints;

impl HostHints {
    /// Whether this vCPU's eCS area is registered with the host.
    fn here() -> Option<Self> {
        (kvm_ecs::msr_of(PossibleCpu::current()) != 0).then_some(Self)
    }

    fn pcpu_overloaded(&self) -> bool {
        kvm_ecs::pcpu_overcommitted(PossibleCpu::current())
    }
}

/// The policy for this waiter: eSCHDSPIN only where the host shares its hints.
fn effective_policy() -> (Policy, Option<HostHints>) {
    match load_policy(&POLICY) {
        Policy::Eschdspin => match HostHints::here() {
            Some(hints) => (Policy::Eschdspin, Some(hints)),
            None => {
                bump(&STATS.no_ecs);
                (load_policy(&FALLBACK), None)
            }
        },
        other => (other, None),
    }
}

/// Why `waiter` may not spin (now) under `policy`, if it may not.
fn stop_reason(policy: Policy, hints: Option<&HostHints>, waiter: &Waiter) -> Option<Stop> {
    if policy == Policy::Stock {
        return Some(Stop::Stock);
    }
    if must_stop() {
        return Some(Stop::Resched);
    }
    if !single_task_running() {
        return Some(Stop::RunQueue);
    }
    if !waiter.owner_running() {
        return Some(Stop::OwnerOff);
    }
    if hints.is_some_and(HostHints::pcpu_overloaded) {
        return Some(Stop::Overloaded);
    }
    None
}

fn sleep(stop: Stop) -> bool {
    bump(&STATS.sleeps);
    bump(&STATS.stops[stop as usize]);
    false
}

/// The lock's question: spin for the lock instead of sleeping?
///
/// # Safety
///
/// Only the locks call this, through [`OPS`], for their first waiter, with a valid waiter; it runs
/// preemptible, in the hook's SRCU read-side section, which keeps this text alive.
unsafe extern "C" fn wait(w: *const bindings::lock_spin_waiter) -> bool {
    // INVARIANT: The lock passes a valid waiter and keeps it while we run (see above).
    let waiter = Waiter { w };
    if let Some(count) = STATS.waits.get(waiter.kind()) {
        bump(count);
    }
    let (policy, hints) = effective_policy();
    if let Some(stop) = stop_reason(policy, hints.as_ref(), &waiter) {
        return sleep(stop);
    }
    bump(&STATS.spins);
    let start = Instant::<Monotonic>::now();
    let limit_ns = SPIN_LIMIT_NS.load(Relaxed);
    let outcome = loop {
        if waiter.granted() {
            bump(&STATS.spin_acquired);
            break None;
        }
        let stop = stop_reason(policy, hints.as_ref(), &waiter);
        if stop.is_some() {
            break stop;
        }
        if start.elapsed().as_nanos() >= limit_ns {
            break Some(Stop::Limit);
        }
        cpu_relax();
    };
    let spun = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
    STATS.spin_ns.fetch_add(spun, Relaxed);
    match outcome {
        None => true,
        Some(stop) => {
            bump(&STATS.spin_to_sleep);
            sleep(stop)
        }
    }
}

static OPS: bindings::lock_spin_ops = bindings::lock_spin_ops { wait: Some(wait) };

/// [`OPS`] installed in the mutex and rwsem slow paths; dropping it uninstalls them.
///
/// # Invariants
///
/// `OPS` is registered with `lock_spin_register()`.
struct SpinRegistration(());

impl SpinRegistration {
    fn new() -> Result<Self> {
        // SAFETY: `OPS` is a static, valid for as long as it stays registered.
        to_result(unsafe { bindings::lock_spin_register(&OPS) })?;
        // INVARIANT: Registered just above.
        Ok(Self(()))
    }
}

impl Drop for SpinRegistration {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `OPS` is registered. On return no waiter spins in `wait`
        // any more; those that were have gone back to their lock, so the module's text may go.
        unsafe { bindings::lock_spin_unregister(&OPS) };
    }
}

/// The debugfs directory's files.
struct Files;

fn show_stats(_: &Files, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let kinds = ["mutex", "rwsem_read", "rwsem_write"];
    for (name, count) in kinds.iter().zip(STATS.waits.iter()) {
        writeln!(f, "waits_{name}: {}", count.load(Relaxed))?;
    }
    writeln!(f, "spins: {}", STATS.spins.load(Relaxed))?;
    writeln!(f, "spin_acquired: {}", STATS.spin_acquired.load(Relaxed))?;
    writeln!(f, "sleeps: {}", STATS.sleeps.load(Relaxed))?;
    writeln!(f, "spin_to_sleep: {}", STATS.spin_to_sleep.load(Relaxed))?;
    writeln!(f, "spin_ns: {}", STATS.spin_ns.load(Relaxed))?;
    for (name, count) in STOP_NAMES.iter().zip(STATS.stops.iter()) {
        writeln!(f, "slept_{name}: {}", count.load(Relaxed))?;
    }
    writeln!(f, "no_ecs: {}", STATS.no_ecs.load(Relaxed))
}

fn show_policy(_: &Files, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "policy: {}", load_policy(&POLICY).name())?;
    writeln!(f, "fallback: {}", load_policy(&FALLBACK).name())?;
    writeln!(f, "spin_limit_ns: {}", SPIN_LIMIT_NS.load(Relaxed))?;
    let ecs = HostHints::here().is_some();
    writeln!(f, "host_hints: {}", if ecs { "yes" } else { "no" })
}

/// `<policy>` or `fallback <policy>`; the fallback may not be eSCHDSPIN.
fn write_policy(_: &Files, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 32];
    let mut words = read_command(reader, &mut buf)?.split_whitespace();
    let (target, name) = match (words.next(), words.next(), words.next()) {
        (Some("fallback"), Some(name), None) => (&FALLBACK, name),
        (Some(name), None, None) => (&POLICY, name),
        _ => return Err(EINVAL),
    };
    let policy = Policy::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or(EINVAL)?;
    if core::ptr::eq(target, &FALLBACK) && policy == Policy::Eschdspin {
        return Err(EINVAL);
    }
    target.store(policy as u32, Relaxed);
    Ok(())
}

/// Checks the module parameters and stores them for [`wait`].
fn configure() -> Result {
    use module_parameters as p;
    let policy = p::policy.value();
    let Some(policy) = Policy::from_u32(policy) else {
        pr_err!("policy={policy} is not 0 (stock), 1 (SCHDSPIN) or 2 (eSCHDSPIN)\n");
        return Err(EINVAL);
    };
    let fallback = match Policy::from_u32(p::fallback.value()) {
        Some(f) if f != Policy::Eschdspin => f,
        _ => {
            pr_err!(
                "fallback={} is not 0 (stock) or 1 (SCHDSPIN)\n",
                p::fallback.value()
            );
            return Err(EINVAL);
        }
    };
    let limit_us = in_range(
        "spin_limit_us",
        p::spin_limit_us.value(),
        MIN_SPIN_US,
        MAX_SPIN_US,
    )?;
    POLICY.store(policy as u32, Relaxed);
    FALLBACK.store(fallback as u32, Relaxed);
    SPIN_LIMIT_NS.store(i64::from(limit_us) * 1000, Relaxed);
    Ok(())
}

#[pin_data]
struct Eschdspin {
    /// Dropped first: no waiter spins here once the debugfs files go.
    _registration: SpinRegistration,
    #[pin]
    _files: Scope<Files>,
}

impl kernel::InPlaceModule for Eschdspin {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // The parameters are read before any waiter can ask.
            _registration: {
                configure()?;
                SpinRegistration::new()?
            },
            _files <- Scope::dir(Files, c"eschdspin", |files, dir| {
                dir.read_callback_file(c"stats", files, &show_stats);
                dir.read_write_callback_file(c"policy", files, &show_policy, &write_policy);
            }),
        })
    }
}
