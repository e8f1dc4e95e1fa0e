// SPDX-License-Identifier: GPL-2.0

//! A lock under contention in a guest, and what its waiters lose to a preempted holder.
//!
//! One thread per CPU, bound to it, loops from load to unload: lock, `hold` iterations, unlock,
//! `think` iterations. Per thread it counts acquisitions, a log2 histogram of the time each
//! acquisition waited, and the waits that overlapped a hold whose vCPU the host preempted. A
//! holder knows it was preempted when its own steal clock grew during the hold; it then bumps a
//! count that every waiter compares before and after it waits. The counters only grow, so a
//! reader takes the difference of two reads of `stats` as one measurement phase.

use core::hint::black_box;
use kernel::{
    debugfs::Scope,
    fmt, new_mutex, new_spinlock,
    prelude::*,
    static_lock_class,
    str::CString,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, SpinLock,
    },
    time::{Instant, Monotonic},
};

#[path = "../../common/cpus.rs"]
mod cpus;
#[path = "../../common/kthread.rs"]
mod kthread;
#[path = "../../common/param.rs"]
mod param;
#[path = "../../common/paravirt.rs"]
mod paravirt;
#[path = "../../common/rwsem.rs"]
mod rwsem;
use cpus::{online_cpus, PossibleCpu};
use kthread::{KThread, ThreadCtx, ThreadFn};
use param::in_range;
use rwsem::RwSem;

module! {
    type: EcsLockbench,
    name: "ecs_lockbench",
    authors: ["eCS suite developers"],
    description: "Lock contention in a guest: wait times and waits on a preempted holder",
    license: "GPL",
    params: {
        lock: u32 {
            default: 0,
            description: "The lock: 0 spinlock, 1 mutex, 2 rwsem (taken for writing)",
        },
        hold: u32 {
            default: 500,
            description: "Loop iterations inside the critical section",
        },
        think: u32 {
            default: 5000,
            description: "Loop iterations between two critical sections",
        },
        threads: u32 {
            default: 0,
            description: "Threads, one per online CPU from the first (0: every online CPU)",
        },
    },
}

/// A hold or think of more iterations would hold a spinlock for seconds under TCG.
const MAX_ITERATIONS: u32 = 1_000_000;
/// Buckets of the wait histogram: bucket `i` counts waits of `[2^i, 2^(i+1))` ns (bucket 0 also
/// counts 0 ns); the last bucket counts everything from 2^31 ns (2.1 s) on.
const BUCKETS: usize = 32;

/// The lock every thread contends on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LockKind {
    Spinlock,
    Mutex,
    Rwsem,
}

impl LockKind {
    fn from_param(value: u32) -> Result<Self> {
        match in_range("lock", value, 0, 2)? {
            0 => Ok(Self::Spinlock),
            1 => Ok(Self::Mutex),
            _ => Ok(Self::Rwsem),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Spinlock => "spinlock",
            Self::Mutex => "mutex",
            Self::Rwsem => "rwsem",
        }
    }
}

/// Burns `n` loop iterations; `black_box` keeps the compiler from folding the loop.
#[inline(always)]
fn spin(n: u32) {
    for i in 0..n {
        black_box(i);
    }
}

/// One thread's counters. Only that thread writes them; `stats` reads them at any time.
struct ThreadStats {
    cpu: PossibleCpu,
    acquisitions: Atomic<u64>,
    /// Nanoseconds waited for the lock, over all acquisitions.
    wait_ns: Atomic<u64>,
    /// Holds of this thread during which its vCPU was preempted.
    preempted_holds: Atomic<u64>,
    /// Waits during which some holder's vCPU was preempted, and their nanoseconds.
    preempted_waits: Atomic<u64>,
    preempted_wait_ns: Atomic<u64>,
    histogram: [Atomic<u64>; BUCKETS],
}

impl ThreadStats {
    fn new(cpu: PossibleCpu) -> Self {
        Self {
            cpu,
            acquisitions: Atomic::new(0),
            wait_ns: Atomic::new(0),
            preempted_holds: Atomic::new(0),
            preempted_waits: Atomic::new(0),
            preempted_wait_ns: Atomic::new(0),
            histogram: [const { Atomic::new(0) }; BUCKETS],
        }
    }

    /// Adds `n` to `counter`, which only this thread writes (a load and a store suffice).
    fn add(counter: &Atomic<u64>, n: u64) {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }

    fn record_wait(&self, wait_ns: u64, holder_was_preempted: bool) {
        Self::add(&self.acquisitions, 1);
        Self::add(&self.wait_ns, wait_ns);
        let bucket = (u64::BITS - wait_ns.leading_zeros()).saturating_sub(1) as usize;
        Self::add(&self.histogram[bucket.min(BUCKETS - 1)], 1);
        if holder_was_preempted {
            Self::add(&self.preempted_waits, 1);
            Self::add(&self.preempted_wait_ns, wait_ns);
        }
    }
}

/// What the threads share.
#[pin_data]
struct Shared {
    kind: LockKind,
    hold: u32,
    think: u32,
    #[pin]
    spin: SpinLock<()>,
    #[pin]
    mutex: Mutex<()>,
    #[pin]
    rwsem: RwSem,
    /// Holds that ended after their vCPU was preempted in them, all threads together.
    preempted_holds: Atomic<u64>,
    stats: KVec<ThreadStats>,
}

impl Shared {
    /// One acquisition by the thread whose counters are `mine`.
    fn section(&self, mine: &ThreadStats) {
        let before = self.preempted_holds.load(Relaxed);
        let start = Instant::<Monotonic>::now();
        match self.kind {
            LockKind::Spinlock => {
                let _guard = self.spin.lock();
                self.held(mine, start, before);
            }
            LockKind::Mutex => {
                let _guard = self.mutex.lock();
                self.held(mine, start, before);
            }
            LockKind::Rwsem => {
                let _guard = self.rwsem.write();
                self.held(mine, start, before);
            }
        }
    }

    /// The critical section, entered after waiting since `start`; `before` is the count of
    /// preempted holds when the wait began.
    fn held(&self, mine: &ThreadStats, start: Instant<Monotonic>, before: u64) {
        let wait_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // Every hold that ended since `before` was read ended while this thread waited: the
        // lock serialises the holds and their updates of the count.
        mine.record_wait(wait_ns, self.preempted_holds.load(Relaxed) != before);
        let steal = paravirt::steal_clock_ns(mine.cpu);
        spin(self.hold);
        if paravirt::steal_clock_ns(mine.cpu) != steal {
            ThreadStats::add(&mine.preempted_holds, 1);
            // Under the lock: no other holder updates the count now.
            ThreadStats::add(&self.preempted_holds, 1);
        }
    }
}

/// One bound thread.
struct Worker {
    shared: Arc<Shared>,
    index: usize,
}

impl ThreadFn for Worker {
    fn run(self, ctx: &ThreadCtx) {
        let Some(mine) = self.shared.stats.get(self.index) else {
            return;
        };
        while !ctx.should_stop() {
            self.shared.section(mine);
            spin(self.shared.think);
        }
    }
}

/// The threads and what they share; dropping it stops the threads.
struct Bench {
    shared: Arc<Shared>,
    _threads: KVec<KThread<Worker>>,
}

impl Bench {
    fn start() -> Result<Self> {
        use module_parameters as p;
        let online = u32::try_from(online_cpus(0)?.len())?;
        let threads = in_range("threads", p::threads.value(), 0, online)?;
        let cpus = online_cpus(threads)?;
        let mut stats = KVec::with_capacity(cpus.len(), GFP_KERNEL)?;
        for &cpu in &cpus {
            let cpu = PossibleCpu::of(cpu).ok_or(EINVAL)?;
            stats.push(ThreadStats::new(cpu), GFP_KERNEL)?;
        }
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                kind: LockKind::from_param(p::lock.value())?,
                hold: in_range("hold", p::hold.value(), 0, MAX_ITERATIONS)?,
                think: in_range("think", p::think.value(), 0, MAX_ITERATIONS)?,
                spin <- new_spinlock!(()),
                mutex <- new_mutex!(()),
                rwsem <- RwSem::new(c"ecs_lockbench_rwsem", static_lock_class!()),
                preempted_holds: Atomic::new(0),
                stats,
            }? Error),
            GFP_KERNEL,
        )?;
        let mut handles = KVec::with_capacity(cpus.len(), GFP_KERNEL)?;
        for (index, &cpu) in cpus.iter().enumerate() {
            let name = CString::try_from_fmt(fmt!("ecs_lockbench/{index}"))?;
            let worker = Worker {
                shared: shared.clone(),
                index,
            };
            // On an error the handles made so far stop their threads when dropped.
            handles.push(KThread::spawn(worker, &name, Some(cpu))?, GFP_KERNEL)?;
        }
        Ok(Self {
            shared,
            _threads: handles,
        })
    }
}

/// A header, then per thread one line of cumulative counters and the histogram.
fn show_stats(bench: &Bench, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let s = &bench.shared;
    writeln!(
        f,
        "lock {} hold {} think {}",
        s.kind.name(),
        s.hold,
        s.think
    )?;
    writeln!(
        f,
        "# cpu acquisitions wait_ns preempted_holds preempted_waits preempted_wait_ns \
         histogram[{BUCKETS}]"
    )?;
    for t in &s.stats {
        write!(
            f,
            "{} {} {} {} {} {}",
            t.cpu.as_u32(),
            t.acquisitions.load(Relaxed),
            t.wait_ns.load(Relaxed),
            t.preempted_holds.load(Relaxed),
            t.preempted_waits.load(Relaxed),
            t.preempted_wait_ns.load(Relaxed)
        )?;
        for bucket in &t.histogram {
            write!(f, " {}", bucket.load(Relaxed))?;
        }
        writeln!(f)?;
    }
    Ok(())
}

#[pin_data]
struct EcsLockbench {
    #[pin]
    bench: Scope<Bench>,
}

impl kernel::InPlaceModule for EcsLockbench {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let bench = Bench::start();
        try_pin_init!(Self {
            bench <- Scope::dir(bench?, c"ecs_lockbench", |bench, dir| {
                dir.read_callback_file(c"stats", bench, &show_stats);
            }),
        })
    }
}
