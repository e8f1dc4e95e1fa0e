// SPDX-License-Identifier: GPL-2.0

//! eCS host policy: defers preempting a vCPU in a guest critical section, once per stay on a CPU.

use core::{fmt, ptr::NonNull};
use kernel::{
    bindings,
    debugfs::Scope,
    error::to_result,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

#[path = "../../common/param.rs"]
mod param;
use param::in_range;

module! {
    type: EcsHost,
    name: "ecs_host",
    authors: ["eCS suite developers"],
    description: "eCS host policy: one bounded extension for vCPUs in critical sections",
    license: "GPL",
    params: {
        grant: bool {
            default: true,
            description: "Grant extensions (false: only count, the baseline)",
        },
        extension_us: u32 {
            default: 1000,
            description: "Longest extension, in microseconds (paper: one 1 ms schedule)",
        },
        poll_us: u32 {
            default: 50,
            description: "How often an extended vCPU is checked for having left its section (us)",
        },
    },
}

/// Bounds of `extension_us` and `poll_us`: checks more often than every 10 us would cost more
/// than they save, and no extension may outlast a 100 Hz tick.
const MIN_US: u32 = 10;
const MAX_US: u32 = 10_000;

/// Counters of the callback's decisions, for all VMs together (KVM keeps them per VM).
struct Stats {
    /// The current task was not a vCPU that registered eCS.
    not_ecs: Atomic<u64>,
    /// The vCPU was outside any critical section: preempted as usual.
    outside: Atomic<u64>,
    /// The vCPU was in a critical section and may run on (a new extension or one within bound).
    deferred: Atomic<u64>,
    /// The vCPU was in a critical section but had had its extension: preempted anyway.
    refused: Atomic<u64>,
}

static STATS: Stats = Stats {
    not_ecs: Atomic::new(0),
    outside: Atomic::new(0),
    deferred: Atomic::new(0),
    refused: Atomic::new(0),
};

/// Whether extensions are granted; set once at load.
static GRANT: Atomic<bool> = Atomic::new(true);
/// The longest extension and the interval of the checks, in ns; set once at load.
static EXTENSION_NS: Atomic<u64> = Atomic::new(0);
static POLL_NS: Atomic<u64> = Atomic::new(0);

fn bump(counter: &Atomic<u64>) {
    counter.fetch_add(1, Relaxed);
}

/// The vCPU that the current task runs, seen from a context that interrupted or is that task.
///
/// # Invariants
///
/// `vcpu` is loaded on this CPU by the current task, which cannot unload or free it while this
/// value lives: it is only made and used inside one call of [`defer`], with interrupts off.
struct RunningVcpu {
    vcpu: NonNull<bindings::kvm_vcpu>,
}

impl RunningVcpu {
    /// The current task's vCPU, if it runs one whose guest registered eCS.
    ///
    /// # Safety
    ///
    /// Interrupts must be off until the result is dropped.
    unsafe fn current() -> Option<Self> {
        // SAFETY: `kvm_ecs_running_vcpu()` only reads this CPU's running vCPU.
        let vcpu = NonNull::new(unsafe { bindings::kvm_ecs_running_vcpu() })?;
        // INVARIANT: KVM's running vCPU is loaded here by the current task; with interrupts off
        // the task cannot get to unload it before we are done.
        Some(Self { vcpu })
    }

    fn in_section(&self) -> bool {
        // SAFETY: By the type invariant the vCPU is live and loaded on this CPU.
        unsafe { bindings::kvm_ecs_in_section(self.vcpu.as_ptr()) }
    }

    /// Lets the vCPU run on: a new extension of at most `limit_ns`, checked every `poll_ns`, or
    /// the running one if within its bound; false if it had its extension.
    fn begin_extension(&self, limit_ns: u64, poll_ns: u64) -> bool {
        // SAFETY: As for `in_section`; interrupts are off.
        unsafe { bindings::kvm_ecs_extension_begin(self.vcpu.as_ptr(), limit_ns, poll_ns) }
    }

    fn end_extension(&self) {
        // SAFETY: As for `begin_extension`.
        unsafe { bindings::kvm_ecs_extension_end(self.vcpu.as_ptr()) }
    }
}

/// The scheduler's question: may the current task run on past its slice?
///
/// # Safety
///
/// Only the scheduler calls this, through [`OPS`], with the run queue locked and interrupts off.
unsafe extern "C" fn defer(_curr: *mut bindings::task_struct) -> bool {
    // SAFETY: The scheduler calls with interrupts off (see the function's safety section).
    let Some(vcpu) = (unsafe { RunningVcpu::current() }) else {
        bump(&STATS.not_ecs);
        return false;
    };
    if !vcpu.in_section() {
        vcpu.end_extension();
        bump(&STATS.outside);
        return false;
    }
    if GRANT.load(Relaxed)
        && vcpu.begin_extension(EXTENSION_NS.load(Relaxed), POLL_NS.load(Relaxed))
    {
        bump(&STATS.deferred);
        return true;
    }
    vcpu.end_extension();
    bump(&STATS.refused);
    false
}

static OPS: bindings::sched_preempt_defer_ops =
    bindings::sched_preempt_defer_ops { defer: Some(defer) };

/// [`OPS`] installed in the scheduler; dropping it uninstalls them.
///
/// # Invariants
///
/// `OPS` is registered with `sched_preempt_defer_register()`.
struct DeferRegistration(());

impl DeferRegistration {
    fn new() -> Result<Self> {
        // SAFETY: `OPS` is a static, valid for as long as it stays registered.
        to_result(unsafe { bindings::sched_preempt_defer_register(&OPS) })?;
        // INVARIANT: Registered just above.
        Ok(Self(()))
    }
}

impl Drop for DeferRegistration {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `OPS` is registered. On return no CPU runs `defer` any
        // more, so the module's text may go.
        unsafe { bindings::sched_preempt_defer_unregister(&OPS) };
    }
}

/// The debugfs `stats` file.
struct StatsFile;

fn show_stats(_: &StatsFile, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "grant: {}", u8::from(GRANT.load(Relaxed)))?;
    writeln!(f, "extension_ns: {}", EXTENSION_NS.load(Relaxed))?;
    writeln!(f, "poll_ns: {}", POLL_NS.load(Relaxed))?;
    writeln!(f, "deferred: {}", STATS.deferred.load(Relaxed))?;
    writeln!(f, "refused: {}", STATS.refused.load(Relaxed))?;
    writeln!(f, "outside: {}", STATS.outside.load(Relaxed))?;
    writeln!(f, "not_ecs: {}", STATS.not_ecs.load(Relaxed))
}

/// Checks the module parameters and stores them for [`defer`].
fn configure() -> Result {
    use module_parameters as p;
    let extension_us = in_range("extension_us", p::extension_us.value(), MIN_US, MAX_US)?;
    let poll_us = in_range("poll_us", p::poll_us.value(), MIN_US, MAX_US)?;
    if poll_us > extension_us {
        pr_err!("poll_us={poll_us} is longer than extension_us={extension_us}\n");
        return Err(EINVAL);
    }
    GRANT.store(p::grant.value(), Relaxed);
    EXTENSION_NS.store(u64::from(extension_us) * 1000, Relaxed);
    POLL_NS.store(u64::from(poll_us) * 1000, Relaxed);
    Ok(())
}

#[pin_data]
struct EcsHost {
    /// Dropped first: no callback runs once the debugfs files go.
    _registration: DeferRegistration,
    #[pin]
    _stats: Scope<StatsFile>,
}

impl kernel::InPlaceModule for EcsHost {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // The parameters are read before the callback can run.
            _registration: {
                configure()?;
                DeferRegistration::new()?
            },
            _stats <- Scope::dir(StatsFile, c"ecs_host", |file, dir| {
                dir.read_callback_file(c"stats", file, &show_stats);
            }),
        })
    }
}
