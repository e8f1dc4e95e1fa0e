// SPDX-License-Identifier: GPL-2.0

//! Times empty critical sections of each lock kind, the eCS annotation's cost (paper: Table 4).

use core::hint::black_box;
use kernel::{
    cpu::CpuId,
    debugfs::Scope,
    fmt, new_mutex, new_spinlock,
    prelude::*,
    static_lock_class,
    str::CString,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        rcu, Arc, Completion, Mutex, SpinLock,
    },
    time::{Instant, Monotonic},
};

#[path = "../../common/cpus.rs"]
mod cpus;
#[path = "../../common/kthread.rs"]
mod kthread;
#[path = "../../common/kvm_ecs.rs"]
mod kvm_ecs;
use kvm_ecs::PreemptibleSection;
#[path = "../../common/param.rs"]
mod param;
#[path = "../../common/rwlock.rs"]
mod rwlock;
#[path = "../../common/rwsem.rs"]
mod rwsem;
use cpus::online_cpus;
use kthread::{KThread, ThreadCtx, ThreadFn};
use param::in_range;
use rwlock::RwLock;
use rwsem::RwSem;

module! {
    type: EcsCostbench,
    name: "ecs_costbench",
    authors: ["eCS suite developers"],
    description: "Cost of an empty critical section per lock kind, with kvm_ecs_key as it is",
    license: "GPL",
    params: {
        iterations: u32 {
            default: 20000,
            description: "Critical sections per timed round and thread",
        },
        rounds: u32 {
            default: 15,
            description: "Timed rounds per path and thread count",
        },
        threads: u32 {
            default: 0,
            description: "Threads of the contended runs, one per CPU (0: every online CPU)",
        },
    },
}

const MAX_ITERATIONS: u32 = 10_000_000;
const MAX_ROUNDS: u32 = 1000;
/// Untimed sections before the first round, to warm caches and the lock's cache line.
const WARMUP_SECTIONS: u32 = 1000;

// ---------------------------------------------------------------------------
// What is timed.

/// One kind of empty critical section.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The loop alone: what every other figure includes.
    Empty,
    /// `kvm_ecs_activate_preemptible()` + deactivate, the paper's "API cost".
    Api,
    Spinlock,
    RwlockRead,
    RwlockWrite,
    Mutex,
    RwsemRead,
    RwsemWrite,
    Rcu,
}

const PATHS: [Path; 9] = [
    Path::Empty,
    Path::Api,
    Path::Spinlock,
    Path::RwlockRead,
    Path::RwlockWrite,
    Path::Mutex,
    Path::RwsemRead,
    Path::RwsemWrite,
    Path::Rcu,
];

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Empty => "empty",
            Path::Api => "api",
            Path::Spinlock => "spinlock",
            Path::RwlockRead => "rwlock_read",
            Path::RwlockWrite => "rwlock_write",
            Path::Mutex => "mutex",
            Path::RwsemRead => "rwsem_read",
            Path::RwsemWrite => "rwsem_write",
            Path::Rcu => "rcu",
        }
    }
}

/// The locks every thread of a run contends on.
#[pin_data]
struct Locks {
    #[pin]
    spin: SpinLock<()>,
    #[pin]
    rwlock: RwLock,
    #[pin]
    mutex: Mutex<()>,
    #[pin]
    rwsem: RwSem,
}

impl Locks {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            spin <- new_spinlock!(()),
            rwlock <- RwLock::new(c"ecs_costbench_rwlock", static_lock_class!()),
            mutex <- new_mutex!(()),
            rwsem <- RwSem::new(c"ecs_costbench_rwsem", static_lock_class!()),
        })
    }

    /// Runs `n` empty critical sections of `path` and returns the nanoseconds they took.
    fn time(&self, path: Path, n: u32) -> u64 {
        let start = Instant::<Monotonic>::now();
        match path {
            Path::Empty => repeat(n, || ()),
            Path::Api => repeat(n, || drop(PreemptibleSection::enter())),
            Path::Spinlock => repeat(n, || drop(self.spin.lock())),
            Path::RwlockRead => repeat(n, || drop(self.rwlock.read())),
            Path::RwlockWrite => repeat(n, || drop(self.rwlock.write())),
            Path::Mutex => repeat(n, || drop(self.mutex.lock())),
            Path::RwsemRead => repeat(n, || drop(self.rwsem.read())),
            Path::RwsemWrite => repeat(n, || drop(self.rwsem.write())),
            Path::Rcu => repeat(n, || drop(rcu::read_lock())),
        }
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(0)
    }
}

/// Calls `section` `n` times; `black_box` keeps the compiler from folding the loop.
#[inline(always)]
fn repeat(n: u32, section: impl Fn()) {
    for i in 0..n {
        section();
        black_box(i);
    }
}

// ---------------------------------------------------------------------------
// A run: every path, first on one thread, then on `threads` threads at once.

/// One timed round: `ps_per_section` is picoseconds per critical section, so that a round of
/// a few nanoseconds per section keeps three decimals without floating point.
#[derive(Clone, Copy)]
struct Sample {
    path: Path,
    threads: u32,
    thread: u32,
    cpu: u32,
    round: u32,
    ps_per_section: u64,
}

/// What the threads of one step of a run share.
#[pin_data]
struct Shared {
    #[pin]
    locks: Locks,
    iterations: u32,
    rounds: u32,
    threads: u32,
    /// Threads that have reached the barrier, over the whole step.
    arrived: Atomic<u32>,
    /// Set when a step cannot start (a thread failed to spawn): every waiter leaves.
    abort: Atomic<bool>,
    /// Threads that have not finished yet; the last one completes `finished`.
    running: Atomic<u32>,
    /// `kthread_stop()` on a thread that has not run yet would skip its body, so the threads
    /// are stopped only after this.
    #[pin]
    finished: Completion,
    #[pin]
    samples: Mutex<KVec<Sample>>,
}

impl Shared {
    /// Waits until all threads have passed barrier number `k` (1-based); false on abort.
    fn barrier(&self, k: u32) -> bool {
        self.arrived.fetch_add(1, Release);
        while self.arrived.load(Acquire) < k.saturating_mul(self.threads) {
            if self.abort.load(Relaxed) {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }
}

/// One thread of a step: all threads start each round together.
struct Worker {
    shared: Arc<Shared>,
    path: Path,
    thread: u32,
    cpu: CpuId,
}

impl ThreadFn for Worker {
    fn run(self, _ctx: &ThreadCtx) {
        self.measure();
        let s = &self.shared;
        if s.running.fetch_sub(1, Release) == 1 {
            s.finished.complete_all();
        }
    }
}

impl Worker {
    fn measure(&self) {
        let s = &self.shared;
        s.locks.time(self.path, WARMUP_SECTIONS);
        let mut mine = KVec::new();
        for round in 0..s.rounds {
            if !s.barrier(round + 1) {
                return;
            }
            let ns = s.locks.time(self.path, s.iterations);
            let sample = Sample {
                path: self.path,
                threads: s.threads,
                thread: self.thread,
                cpu: self.cpu.as_u32(),
                round,
                ps_per_section: ns.saturating_mul(1000) / u64::from(s.iterations.max(1)),
            };
            if mine.push(sample, GFP_KERNEL).is_err() {
                s.abort.store(true, Relaxed);
                return;
            }
        }
        // A failed append loses this thread's samples; the report checks every count.
        let _ = s.samples.lock().extend_from_slice(&mine, GFP_KERNEL);
    }
}

/// The checked module parameters.
#[derive(Clone, Copy)]
struct Params {
    iterations: u32,
    rounds: u32,
    threads: u32,
}

impl Params {
    fn from_module() -> Result<Self> {
        use module_parameters as p;
        let online = u32::try_from(online_cpus(0)?.len())?;
        let threads = in_range("threads", p::threads.value(), 0, online)?;
        Ok(Self {
            iterations: in_range("iterations", p::iterations.value(), 1, MAX_ITERATIONS)?,
            rounds: in_range("rounds", p::rounds.value(), 1, MAX_ROUNDS)?,
            threads: if threads == 0 { online } else { threads },
        })
    }
}

/// Runs one path on the first `threads` online CPUs and returns the samples.
fn step(params: Params, path: Path, threads: u32) -> Result<KVec<Sample>> {
    // `pin_init!` shadows `threads` with a reference to the field once it is set.
    let not_finished = threads;
    let shared = Arc::pin_init(
        try_pin_init!(Shared {
            locks <- Locks::new(),
            iterations: params.iterations,
            rounds: params.rounds,
            threads,
            arrived: Atomic::new(0),
            abort: Atomic::new(false),
            running: Atomic::new(not_finished),
            finished <- Completion::new(),
            samples <- new_mutex!(KVec::new()),
        }? Error),
        GFP_KERNEL,
    )?;
    let mut workers = KVec::new();
    let mut spawned = Ok(());
    for (thread, cpu) in (0..threads).zip(online_cpus(threads)?) {
        let name = CString::try_from_fmt(fmt!("ecs_costbench/{thread}"))?;
        let worker = Worker {
            shared: shared.clone(),
            path,
            thread,
            cpu,
        };
        spawned = KThread::spawn(worker, &name, Some(cpu))
            .and_then(|t| workers.push(t, GFP_KERNEL).map_err(Into::into));
        if spawned.is_err() {
            shared.abort.store(true, Relaxed);
            break;
        }
    }
    if spawned.is_ok() {
        shared.finished.wait_for_completion();
    }
    // Stops (or, after a failed spawn, aborts) and reaps every thread.
    drop(workers);
    spawned?;
    if shared.abort.load(Relaxed) {
        return Err(ENOMEM);
    }
    let mut samples = shared.samples.lock();
    Ok(core::mem::take(&mut *samples))
}

/// The results of the run made at load time.
struct Results {
    params: Params,
    key_on: bool,
    samples: KVec<Sample>,
}

impl Results {
    fn measure(params: Params) -> Result<Self> {
        let key_on = kvm_ecs::counting();
        let mut samples = KVec::new();
        for threads in [1, params.threads] {
            for path in PATHS {
                samples.extend_from_slice(&step(params, path, threads)?, GFP_KERNEL)?;
            }
            if params.threads == 1 {
                break;
            }
        }
        if key_on != self::kvm_ecs::counting() {
            pr_err!("kvm_ecs_key changed during the run; results discarded\n");
            return Err(EAGAIN);
        }
        Ok(Self {
            params,
            key_on,
            samples,
        })
    }
}

/// A header, then `path threads thread cpu round ps_per_section` lines.
fn show_samples(results: &Results, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let p = &results.params;
    writeln!(f, "key {}", if results.key_on { "on" } else { "off" })?;
    writeln!(f, "iterations {}", p.iterations)?;
    writeln!(f, "rounds {}", p.rounds)?;
    writeln!(f, "threads {}", p.threads)?;
    writeln!(f, "# path threads thread cpu round ps_per_section")?;
    for s in &results.samples {
        writeln!(
            f,
            "{} {} {} {} {} {}",
            s.path.name(),
            s.threads,
            s.thread,
            s.cpu,
            s.round,
            s.ps_per_section
        )?;
    }
    Ok(())
}

#[pin_data]
struct EcsCostbench {
    #[pin]
    results: Scope<Results>,
}

impl kernel::InPlaceModule for EcsCostbench {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let results = Params::from_module().and_then(Results::measure);
        try_pin_init!(Self {
            results <- Scope::dir(results?, c"ecs_costbench", |results, dir| {
                dir.read_callback_file(c"samples", results, &show_samples);
            }),
        })
    }
}
