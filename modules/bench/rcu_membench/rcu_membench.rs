// SPDX-License-Identifier: GPL-2.0

//! Measures RCU grace-period latency and the memory `call_rcu()` holds back under steady load.

use core::{alloc::Layout, mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    alloc::{allocator::Kmalloc, Allocator, Flags, NumaNode},
    bindings,
    cpu::CpuId,
    debugfs::Scope,
    fmt, new_mutex,
    prelude::*,
    str::CString,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        rcu, Arc, Mutex,
    },
    time::{delay::fsleep, Delta, Instant, Monotonic},
    types::Opaque,
    uaccess::UserSliceReader,
};

#[path = "../../common/knob.rs"]
mod knob;
use knob::read_command;
#[path = "../../common/cpus.rs"]
mod cpus;
#[path = "../../common/kthread.rs"]
mod kthread;
#[path = "../../common/param.rs"]
mod param;
use cpus::online_cpus;
use kthread::{KThread, ThreadCtx, ThreadFn};
use param::in_range;

module! {
    type: RcuMembench,
    name: "rcu_membench",
    authors: ["eCS suite developers"],
    description: "call_rcu() memory microbenchmark: grace-period latency and footprint",
    license: "GPL",
    params: {
        obj_size: u32 {
            default: 1024,
            description: "Bytes per object",
        },
        rate: u32 {
            default: 2500,
            description: "Allocation and call_rcu() pairs per second per CPU",
        },
        batch: u32 {
            default: 10,
            description: "Pairs per RCU read-side critical section",
        },
        duration: u32 {
            default: 10,
            description: "Seconds per run",
        },
        max_outstanding_bytes: u64 {
            default: 64 << 20,
            description: "Workers pause while this many bytes wait for a grace period",
        },
        cpus: u32 {
            default: 0,
            description: "Workers on the first N online CPUs (0: every online CPU)",
        },
        sample_every: u32 {
            default: 10,
            description: "Time the grace period of every Nth object of each worker",
        },
        series_ms: u32 {
            default: 10,
            description: "Footprint sampling period in milliseconds",
        },
        autostart: bool {
            default: true,
            description: "Start a run when the module is loaded",
        },
    },
}

const MAX_OBJ_SIZE: u32 = 1 << 20;
const MAX_RATE: u32 = 1_000_000;
const MAX_DURATION: u32 = 3600;
const MAX_OUTSTANDING_BYTES: u64 = 16 << 30;
const MAX_SAMPLE_EVERY: u32 = 1_000_000;
const MAX_SERIES_MS: u32 = 1000;
/// Grace-period samples kept per worker; later ones are only counted.
const GP_SAMPLES_PER_WORKER: usize = 32768;
/// Footprint samples kept; beyond that the oldest are overwritten.
const SERIES_CAPACITY: usize = 65536;
/// Longest sleep between two looks at `kthread_should_stop()`.
const MAX_NAP: Delta = Delta::from_millis(10);
/// A worker further behind its schedule than this skips ahead instead of catching up.
const MAX_LAG: Delta = Delta::from_millis(100);
/// Sleep of a worker held back by `max_outstanding_bytes`.
const CAP_NAP: Delta = Delta::from_millis(1);
const NSEC_PER_SEC: i64 = 1_000_000_000;
/// The smallest object: all header.
const MIN_OBJ_SIZE: usize = RcuObject::<Meta>::MIN_SIZE;

// ---------------------------------------------------------------------------
// call_rcu(): an object that frees itself after a grace period.

/// What an [`RcuObject`] carries besides its bytes, handed back once a grace period has freed it.
trait Reclaim: Send + 'static {
    /// Called from the RCU callback (softirq or rcuo kthread context), so it must not sleep.
    fn reclaimed(self);
}

/// The start of every [`RcuObject`] allocation.
#[repr(C)]
struct ObjectHeader<T> {
    /// First, so that the callback's `rcu_head` pointer is also a pointer to the header.
    head: Opaque<bindings::callback_head>,
    layout: Layout,
    meta: T,
}

/// A kmalloc'ed object of a chosen size whose memory goes back through `call_rcu()`.
///
/// # Invariants
///
/// `ptr` points to a live [`Kmalloc`] allocation made with `(*ptr).layout`, which starts with an
/// initialised `ObjectHeader<T>`, and this handle is its only owner.
struct RcuObject<T: Reclaim> {
    ptr: NonNull<ObjectHeader<T>>,
}

impl<T: Reclaim> RcuObject<T> {
    const MIN_SIZE: usize = size_of::<ObjectHeader<T>>();

    /// Allocates `size` bytes (at least [`Self::MIN_SIZE`]) that carry `meta`.
    fn new(size: usize, meta: T, flags: Flags) -> Result<Self> {
        let layout =
            Layout::from_size_align(size.max(Self::MIN_SIZE), align_of::<ObjectHeader<T>>())
                .map_err(|_| EINVAL)?;
        let ptr = Kmalloc::alloc(layout, flags, NumaNode::NO_NODE)?.cast::<ObjectHeader<T>>();
        // SAFETY: `ptr` is valid for writes of `layout.size()` bytes, at least the size of the
        // header, and aligned to `layout.align()`, the header's alignment.
        unsafe {
            ptr.as_ptr().write(ObjectHeader {
                head: Opaque::uninit(),
                layout,
                meta,
            })
        };
        // INVARIANT: The allocation was just made with `layout`, its header is initialised and
        // nobody else has the pointer.
        Ok(Self { ptr })
    }

    fn meta_mut(&mut self) -> &mut T {
        // SAFETY: By the type invariant the header is initialised and owned by `self`, which is
        // borrowed mutably for as long as the result.
        unsafe { &mut (*self.ptr.as_ptr()).meta }
    }

    /// Frees the object after a grace period, then hands its metadata to [`Reclaim::reclaimed`].
    ///
    /// The callback is this module's code: the module calls `rcu_barrier()` before it goes.
    fn call_rcu(self) {
        let this = ManuallyDrop::new(self);
        let head = this.ptr.as_ptr().cast::<bindings::callback_head>();
        // SAFETY: `head` is the first field of the `repr(C)` header (`Opaque` is transparent) of
        // an allocation we own by the type invariant. Ownership passes to RCU (`this` is never
        // dropped), which calls `Self::reclaim` exactly once, after a grace period; until then
        // nothing else touches the allocation.
        unsafe { bindings::call_rcu(head, Some(Self::reclaim)) };
    }

    /// The `call_rcu()` callback.
    ///
    /// # Safety
    ///
    /// `head` must come from [`Self::call_rcu`], and this must be RCU's one call for it.
    unsafe extern "C" fn reclaim(head: *mut bindings::callback_head) {
        let header = head.cast::<ObjectHeader<T>>();
        // SAFETY: By the safety requirements `header` is the live, initialised header of an
        // allocation that RCU has handed back to us. `meta` is moved out once, then the memory
        // is freed with the layout it was made with and never touched again.
        let meta = unsafe {
            let layout = (*header).layout;
            let meta = core::ptr::read(&raw const (*header).meta);
            Kmalloc::free(NonNull::new_unchecked(header.cast()), layout);
            meta
        };
        meta.reclaimed();
    }
}

impl<T: Reclaim> Drop for RcuObject<T> {
    fn drop(&mut self) {
        let header = self.ptr.as_ptr();
        // SAFETY: By the type invariant we own the live allocation and its initialised header.
        // The metadata is dropped once, then the memory is freed with its own layout; `self` is
        // not used again.
        unsafe {
            let layout = (*header).layout;
            core::ptr::drop_in_place(&raw mut (*header).meta);
            Kmalloc::free(self.ptr.cast(), layout);
        }
    }
}

// ---------------------------------------------------------------------------
// Parameters.

/// The module parameters, checked at load time.
#[derive(Clone, Copy)]
struct Params {
    obj_size: usize,
    rate: u32,
    batch: u32,
    duration: u32,
    max_outstanding_bytes: u64,
    cpus: u32,
    sample_every: u32,
    series_ms: u32,
}

impl Params {
    fn from_module() -> Result<Self> {
        use module_parameters as p;
        let min_obj = u32::try_from(MIN_OBJ_SIZE)?;
        let obj_size = in_range("obj_size", p::obj_size.value(), min_obj, MAX_OBJ_SIZE)?;
        let rate = in_range("rate", p::rate.value(), 1, MAX_RATE)?;
        let online = u32::try_from(online_cpus(0)?.len())?;
        Ok(Self {
            obj_size: usize::try_from(obj_size)?,
            rate,
            batch: in_range("batch", p::batch.value(), 1, rate)?,
            duration: in_range("duration", p::duration.value(), 1, MAX_DURATION)?,
            max_outstanding_bytes: in_range(
                "max_outstanding_bytes",
                p::max_outstanding_bytes.value(),
                u64::from(obj_size),
                MAX_OUTSTANDING_BYTES,
            )?,
            cpus: in_range("cpus", p::cpus.value(), 0, online)?,
            sample_every: in_range("sample_every", p::sample_every.value(), 1, MAX_SAMPLE_EVERY)?,
            series_ms: in_range("series_ms", p::series_ms.value(), 1, MAX_SERIES_MS)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Results of a run.

/// Whether `a` comes before `b` (`Instant<Monotonic>` is not `PartialOrd`).
fn before(a: Instant<Monotonic>, b: Instant<Monotonic>) -> bool {
    (a - b).is_negative()
}

/// Nanoseconds in `d`, 0 if negative.
fn nanos(d: Delta) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(0)
}

/// Grace-period samples of one worker: `(t_ms, gp_us)` packed in one word each, so that RCU
/// callbacks can record them without a lock.
struct GpSamples {
    slots: KVVec<Atomic<u64>>,
    taken: Atomic<usize>,
}

impl GpSamples {
    fn new() -> Result<Self> {
        let mut slots = KVVec::with_capacity(GP_SAMPLES_PER_WORKER, GFP_KERNEL)?;
        for _ in 0..GP_SAMPLES_PER_WORKER {
            slots.push(Atomic::new(0), GFP_KERNEL)?;
        }
        Ok(Self {
            slots,
            taken: Atomic::new(0),
        })
    }

    fn record(&self, t_ms: u32, gp_us: u32) {
        let i = self.taken.fetch_add(1, Relaxed);
        if let Some(slot) = self.slots.get(i) {
            // Zero marks a slot that is not written yet.
            slot.store(u64::from(t_ms) << 32 | u64::from(gp_us.max(1)), Relaxed);
        }
    }

    /// Samples recorded, including those that did not fit.
    fn total(&self) -> usize {
        self.taken.load(Relaxed)
    }

    fn dropped(&self) -> usize {
        self.total().saturating_sub(self.slots.len())
    }

    /// `(t_ms, gp_us)` of the kept samples, in the order their callbacks ran.
    fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let kept = self.total().min(self.slots.len());
        self.slots[..kept]
            .iter()
            .map(|slot| slot.load(Relaxed))
            .filter(|&v| v != 0)
            .map(|v| ((v >> 32) as u32, v as u32))
    }
}

/// Counters of one worker, bumped by it and by the callbacks of its objects.
struct WorkerStats {
    cpu: CpuId,
    allocated: Atomic<u64>,
    freed: Atomic<u64>,
    batches: Atomic<u64>,
    alloc_failures: Atomic<u64>,
    cap_stalls: Atomic<u64>,
    cap_stall_ns: Atomic<u64>,
    lag_resets: Atomic<u64>,
    cpu_ns: Atomic<u64>,
    gp: GpSamples,
}

impl WorkerStats {
    fn new(cpu: CpuId) -> Result<Self> {
        Ok(Self {
            cpu,
            allocated: Atomic::new(0),
            freed: Atomic::new(0),
            batches: Atomic::new(0),
            alloc_failures: Atomic::new(0),
            cap_stalls: Atomic::new(0),
            cap_stall_ns: Atomic::new(0),
            lag_resets: Atomic::new(0),
            cpu_ns: Atomic::new(0),
            gp: GpSamples::new()?,
        })
    }
}

/// Outstanding objects over time, `(t_ms, objects)`; once full, the oldest are overwritten.
struct Series {
    entries: KVVec<(u32, u32)>,
    pushed: usize,
}

impl Series {
    fn push(&mut self, entry: (u32, u32)) {
        if self.entries.len() < SERIES_CAPACITY {
            // Cannot fail: the capacity was reserved up front.
            let _ = self.entries.push_within_capacity(entry);
        } else {
            self.entries[self.pushed % SERIES_CAPACITY] = entry;
        }
        self.pushed += 1;
    }

    fn dropped(&self) -> usize {
        self.pushed - self.entries.len()
    }

    /// Oldest first.
    fn iter(&self) -> impl Iterator<Item = &(u32, u32)> {
        let split = if self.dropped() > 0 {
            self.pushed % SERIES_CAPACITY
        } else {
            0
        };
        Iterator::chain(self.entries[split..].iter(), self.entries[..split].iter())
    }
}

/// Workers are allocating.
const RUNNING: u32 = 0;
/// Workers are gone, callbacks are still due.
const DRAINING: u32 = 1;
/// Every object of the run has been freed.
const DONE: u32 = 2;

/// One run: settings, counters and samples, shared by its workers, its sampler, the callbacks
/// of its objects (each object holds a reference) and debugfs.
#[pin_data]
struct RunData {
    params: Params,
    started: Instant<Monotonic>,
    workers: KVec<WorkerStats>,
    outstanding: Atomic<u64>,
    peak: Atomic<u64>,
    workers_left: Atomic<usize>,
    state: Atomic<u32>,
    stopped_early: Atomic<bool>,
    /// Nanoseconds from `started` to the exit of the last worker; 0 while workers run.
    ended_ns: Atomic<u64>,
    #[pin]
    series: Mutex<Series>,
}

impl RunData {
    fn new(params: Params, cpus: &[CpuId]) -> Result<Arc<Self>> {
        let mut workers = KVec::with_capacity(cpus.len(), GFP_KERNEL)?;
        for &cpu in cpus {
            workers.push(WorkerStats::new(cpu)?, GFP_KERNEL)?;
        }
        let series = Series {
            entries: KVVec::with_capacity(SERIES_CAPACITY, GFP_KERNEL)?,
            pushed: 0,
        };
        Arc::pin_init(
            pin_init!(Self {
                params,
                started: Instant::now(),
                workers_left: Atomic::new(workers.len()),
                workers,
                outstanding: Atomic::new(0),
                peak: Atomic::new(0),
                state: Atomic::new(RUNNING),
                stopped_early: Atomic::new(false),
                ended_ns: Atomic::new(0),
                series <- new_mutex!(series),
            }),
            GFP_KERNEL,
        )
    }

    /// Milliseconds from the start of the run to `t`.
    fn ms_at(&self, t: Instant<Monotonic>) -> u32 {
        u32::try_from(nanos(t - self.started) / 1_000_000).unwrap_or(u32::MAX)
    }

    /// Whether one more object would exceed `max_outstanding_bytes`.
    fn over_cap(&self) -> bool {
        let objects = self.outstanding.load(Relaxed) + 1;
        objects * self.params.obj_size as u64 > self.params.max_outstanding_bytes
    }

    fn count_allocation(&self) {
        let now = self.outstanding.fetch_add(1, Relaxed) + 1;
        let mut peak = self.peak.load(Relaxed);
        while now > peak {
            match self.peak.cmpxchg(peak, now, Relaxed) {
                Ok(_) => break,
                Err(seen) => peak = seen,
            }
        }
    }

    fn count_free(&self) {
        self.outstanding.fetch_sub(1, Relaxed);
    }

    fn worker_exited(&self) {
        if self.workers_left.fetch_sub(1, Relaxed) == 1 {
            self.ended_ns.store(nanos(self.started.elapsed()), Relaxed);
            let _ = self.state.cmpxchg(RUNNING, DRAINING, Release);
        }
    }

    fn sample(&self) {
        let t_ms = self.ms_at(Instant::now());
        let objects = u32::try_from(self.outstanding.load(Relaxed)).unwrap_or(u32::MAX);
        self.series.lock().push((t_ms, objects));
    }

    /// Marks the run over once its threads are gone and `rcu_barrier()` has returned.
    fn finish(&self, early: bool) {
        if self.ended_ns.load(Relaxed) == 0 {
            self.ended_ns.store(nanos(self.started.elapsed()), Relaxed);
        }
        self.stopped_early.store(early, Relaxed);
        self.state.store(DONE, Release);
    }

    fn state_name(&self) -> &'static str {
        match self.state.load(Acquire) {
            RUNNING => "running",
            DRAINING => "draining",
            _ => "done",
        }
    }

    fn sum(&self, counter: impl Fn(&WorkerStats) -> &Atomic<u64>) -> u64 {
        self.workers.iter().map(|w| counter(w).load(Relaxed)).sum()
    }

    /// The `summary` file: `key: value` lines, see docs/rcu_membench.md.
    fn write_summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        let obj_size = p.obj_size as u64;
        let elapsed_ns = match self.ended_ns.load(Relaxed) {
            0 => nanos(self.started.elapsed()),
            ns => ns,
        };
        let allocated = self.sum(|w| &w.allocated);
        let outstanding = self.outstanding.load(Relaxed);
        let peak = self.peak.load(Relaxed);
        let per_cpu_ns = elapsed_ns * self.workers.len() as u64;
        writeln!(f, "state: {}", self.state_name())?;
        writeln!(
            f,
            "stopped_early: {}",
            u8::from(self.stopped_early.load(Relaxed))
        )?;
        writeln!(f, "obj_size: {}", p.obj_size)?;
        writeln!(f, "rate: {}", p.rate)?;
        writeln!(f, "batch: {}", p.batch)?;
        writeln!(f, "duration_s: {}", p.duration)?;
        writeln!(f, "max_outstanding_bytes: {}", p.max_outstanding_bytes)?;
        writeln!(f, "sample_every: {}", p.sample_every)?;
        writeln!(f, "series_ms: {}", p.series_ms)?;
        writeln!(f, "workers: {}", self.workers.len())?;
        write!(f, "cpus:")?;
        for w in &self.workers {
            write!(f, " {}", w.cpu.as_u32())?;
        }
        writeln!(f)?;
        writeln!(f, "elapsed_ms: {}", elapsed_ns / 1_000_000)?;
        writeln!(f, "allocated: {allocated}")?;
        writeln!(f, "callbacks: {}", self.sum(|w| &w.freed))?;
        writeln!(f, "outstanding_objects: {outstanding}")?;
        writeln!(f, "outstanding_bytes: {}", outstanding * obj_size)?;
        writeln!(f, "peak_outstanding_objects: {peak}")?;
        writeln!(f, "peak_outstanding_bytes: {}", peak * obj_size)?;
        writeln!(
            f,
            "achieved_rate: {}",
            (allocated * NSEC_PER_SEC as u64)
                .checked_div(per_cpu_ns)
                .unwrap_or(0)
        )?;
        writeln!(f, "batches: {}", self.sum(|w| &w.batches))?;
        writeln!(f, "alloc_failures: {}", self.sum(|w| &w.alloc_failures))?;
        writeln!(f, "cap_stalls: {}", self.sum(|w| &w.cap_stalls))?;
        writeln!(
            f,
            "cap_stall_ms: {}",
            self.sum(|w| &w.cap_stall_ns) / 1_000_000
        )?;
        writeln!(f, "lag_resets: {}", self.sum(|w| &w.lag_resets))?;
        writeln!(f, "worker_cpu_ms: {}", self.sum(|w| &w.cpu_ns) / 1_000_000)?;
        let gp = GpStats::collect(&self.workers).map_err(|_| fmt::Error)?;
        writeln!(f, "gp_samples: {}", gp.count)?;
        writeln!(f, "gp_samples_dropped: {}", gp.dropped)?;
        writeln!(f, "gp_mean_us: {}", gp.mean)?;
        writeln!(f, "gp_sd_us: {}", gp.sd)?;
        writeln!(f, "gp_min_us: {}", gp.min)?;
        writeln!(f, "gp_p50_us: {}", gp.p50)?;
        writeln!(f, "gp_p90_us: {}", gp.p90)?;
        writeln!(f, "gp_p99_us: {}", gp.p99)?;
        writeln!(f, "gp_max_us: {}", gp.max)?;
        let series = self.series.lock();
        writeln!(f, "series_samples: {}", series.entries.len())?;
        writeln!(f, "series_dropped: {}", series.dropped())
    }
}

/// Grace-period latency statistics over the kept samples, in microseconds.
#[derive(Default)]
struct GpStats {
    count: usize,
    dropped: usize,
    mean: u64,
    sd: u64,
    min: u32,
    p50: u32,
    p90: u32,
    p99: u32,
    max: u32,
}

impl GpStats {
    fn collect(workers: &[WorkerStats]) -> Result<Self> {
        let total = workers.iter().map(|w| w.gp.total()).sum();
        let mut v = KVVec::with_capacity(total, GFP_KERNEL)?;
        let mut dropped = 0;
        for w in workers {
            dropped += w.gp.dropped();
            for (_, us) in w.gp.iter() {
                v.push(us, GFP_KERNEL)?;
            }
        }
        if v.is_empty() {
            return Ok(Self {
                dropped,
                ..Self::default()
            });
        }
        v.sort_unstable();
        let n = v.len() as u64;
        let mean = v.iter().map(|&us| u64::from(us)).sum::<u64>() / n.max(1);
        // Each squared deviation fits in a u64 (the samples are u32); dividing term by term keeps
        // the sum in range without 128-bit division, which the kernel does not link.
        let (quotients, remainders) = v.iter().fold((0u64, 0u64), |(q, r), &us| {
            let sq = u64::from(us).abs_diff(mean).pow(2);
            (
                q.saturating_add(sq / n.max(1)),
                r.saturating_add(sq % n.max(1)),
            )
        });
        let variance = quotients.saturating_add(remainders / n.max(1));
        // Nearest rank.
        let pct = |p: u64| v[(usize::try_from((p * n).div_ceil(100)).unwrap_or(1)).max(1) - 1];
        Ok(Self {
            count: v.len(),
            dropped,
            mean,
            sd: variance.isqrt(),
            min: v[0],
            p50: pct(50),
            p90: pct(90),
            p99: pct(99),
            max: v[v.len() - 1],
        })
    }
}

// ---------------------------------------------------------------------------
// The threads of a run.

/// What each object carries: its run, its worker, and when it was queued if it is timed.
struct Meta {
    run: Arc<RunData>,
    worker: usize,
    queued: Option<Instant<Monotonic>>,
}

impl Reclaim for Meta {
    fn reclaimed(self) {
        let run = &*self.run;
        let stats = &run.workers[self.worker];
        if let Some(queued) = self.queued {
            let gp_us = u32::try_from(nanos(queued.elapsed()) / 1000).unwrap_or(u32::MAX);
            stats.gp.record(run.ms_at(queued), gp_us);
        }
        stats.freed.add(1, Relaxed);
        run.count_free();
        // `Run` keeps a reference until after `rcu_barrier()`, so dropping `self.run` here is
        // never the last one.
    }
}

/// How a batch ended.
enum BatchEnd {
    Complete,
    CapReached,
    AllocFailed,
}

/// Allocates objects and frees them through `call_rcu()` at the configured rate, on one CPU.
struct Worker {
    run: Arc<RunData>,
    index: usize,
}

impl Worker {
    fn stats(&self) -> &WorkerStats {
        &self.run.workers[self.index]
    }

    /// One RCU read-side critical section of `batch` allocation and `call_rcu()` pairs.
    fn batch(&self, seq: &mut u64) -> BatchEnd {
        let run = &*self.run;
        let p = &run.params;
        let _reader = rcu::read_lock();
        for _ in 0..p.batch {
            if run.over_cap() {
                return BatchEnd::CapReached;
            }
            let meta = Meta {
                run: self.run.clone(),
                worker: self.index,
                queued: None,
            };
            // No sleeping inside the read-side critical section.
            let Ok(mut obj) = RcuObject::new(p.obj_size, meta, GFP_NOWAIT | __GFP_NOWARN) else {
                self.stats().alloc_failures.add(1, Relaxed);
                return BatchEnd::AllocFailed;
            };
            self.stats().allocated.add(1, Relaxed);
            run.count_allocation();
            if seq.checked_rem(u64::from(p.sample_every)) == Some(0) {
                obj.meta_mut().queued = Some(Instant::now());
            }
            *seq += 1;
            obj.call_rcu();
        }
        BatchEnd::Complete
    }

    /// Waits, outside any read-side critical section, until the callbacks catch up.
    fn stall(&self, ctx: &ThreadCtx, end: Instant<Monotonic>) {
        let start = Instant::<Monotonic>::now();
        self.stats().cap_stalls.add(1, Relaxed);
        while self.run.over_cap() && !ctx.should_stop() && before(Instant::now(), end) {
            fsleep(CAP_NAP);
        }
        self.stats()
            .cap_stall_ns
            .add(nanos(start.elapsed()), Relaxed);
    }
}

impl ThreadFn for Worker {
    fn run(self, ctx: &ThreadCtx) {
        let p = self.run.params;
        let period_ns = (i64::from(p.batch) * NSEC_PER_SEC).checked_div(i64::from(p.rate));
        let period = Delta::from_nanos(period_ns.unwrap_or(NSEC_PER_SEC));
        let end = self.run.started + Delta::from_secs(p.duration.into());
        let mut next = Instant::<Monotonic>::now();
        let mut seq = 0;
        while !ctx.should_stop() {
            let now = Instant::now();
            if !before(now, end) {
                break;
            }
            if before(now, next) {
                fsleep((next - now).min(MAX_NAP));
                continue;
            }
            if now - next > MAX_LAG {
                self.stats().lag_resets.add(1, Relaxed);
                next = now;
            }
            next = next + period;
            match self.batch(&mut seq) {
                BatchEnd::CapReached => {
                    self.stall(ctx, end);
                    next = Instant::now();
                }
                BatchEnd::Complete | BatchEnd::AllocFailed => {}
            }
            self.stats().batches.add(1, Relaxed);
            self.stats().cpu_ns.store(ctx.cpu_time_ns(), Relaxed);
        }
        self.run.worker_exited();
    }
}

/// Records the outstanding objects every `series_ms` and ends the run once they have drained.
struct Sampler {
    run: Arc<RunData>,
}

impl ThreadFn for Sampler {
    fn run(self, ctx: &ThreadCtx) {
        let run = &*self.run;
        let period = Delta::from_millis(run.params.series_ms.into());
        let mut next = run.started;
        loop {
            run.sample();
            if ctx.should_stop() {
                break;
            }
            if run.state.load(Acquire) == DRAINING && run.outstanding.load(Relaxed) == 0 {
                let _ = run.state.cmpxchg(DRAINING, DONE, Relaxed);
                break;
            }
            // Slots missed while late are skipped, not sampled back to back.
            let now = Instant::now();
            next = next + period;
            if before(next, now) {
                next = now + period;
            }
            loop {
                let now = Instant::now();
                if !before(now, next) || ctx.should_stop() {
                    break;
                }
                fsleep((next - now).min(MAX_NAP));
            }
        }
    }
}

/// The threads of a run. Dropping it stops them and waits for every callback of the run.
struct Run {
    data: Arc<RunData>,
    workers: KVec<KThread<Worker>>,
    sampler: Option<KThread<Sampler>>,
}

impl Run {
    fn start(params: Params) -> Result<Self> {
        let cpus = online_cpus(params.cpus)?;
        let data = RunData::new(params, &cpus)?;
        let mut run = Run {
            data: data.clone(),
            workers: KVec::with_capacity(cpus.len(), GFP_KERNEL)?,
            sampler: None,
        };
        for (index, &cpu) in cpus.iter().enumerate() {
            let name = CString::try_from_fmt(fmt!("rcu_membench/{}", cpu.as_u32()))?;
            let worker = Worker {
                run: data.clone(),
                index,
            };
            run.workers
                .push(KThread::spawn(worker, &name, Some(cpu))?, GFP_KERNEL)?;
        }
        let sampler = Sampler { run: data };
        run.sampler = Some(KThread::spawn(sampler, c"rcu_membench_mon", None)?);
        pr_info!(
            "run started: {} workers, {} x {} B/s each in sections of {}, {} s\n",
            cpus.len(),
            params.rate,
            params.obj_size,
            params.batch,
            params.duration
        );
        Ok(run)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let early = self.data.state.load(Acquire) == RUNNING;
        self.workers.clear();
        // Every object this run queued has its callback in this module's text: wait for all of
        // them, so that the module cannot go away under one.
        rcu::rcu_barrier();
        // The sampler records the drained state before it goes.
        self.sampler = None;
        self.data.finish(early);
    }
}

// ---------------------------------------------------------------------------
// Control and reports through debugfs.

struct Control {
    /// The threads of the latest run, until it is stopped or replaced.
    run: Option<Run>,
    /// Results of the latest run.
    last: Option<Arc<RunData>>,
    /// Set at unload: no more runs.
    closing: bool,
}

/// Data of the debugfs directory.
#[pin_data]
struct Bench {
    params: Params,
    #[pin]
    ctl: Mutex<Control>,
}

impl Bench {
    fn new(params: Params) -> impl PinInit<Scope<Self>, Error> {
        let bench = try_pin_init!(Self {
            params,
            ctl <- new_mutex!(Control {
                run: None,
                last: None,
                closing: false,
            }),
        }? Error);
        Scope::dir(bench, c"rcu_membench", |bench, dir| {
            dir.read_write_callback_file(c"control", bench, &show_control, &write_control);
            dir.read_callback_file(c"summary", bench, &show_summary);
            dir.read_callback_file(c"series", bench, &show_series);
            dir.read_callback_file(c"gp_samples", bench, &show_gp_samples);
        })
    }

    /// Starts a run unless one is still going; reaps the threads of a finished one first.
    fn start(&self) -> Result {
        let mut ctl = self.ctl.lock();
        if ctl.closing {
            return Err(ENODEV);
        }
        if ctl
            .run
            .as_ref()
            .is_some_and(|run| run.data.state.load(Acquire) != DONE)
        {
            return Err(EBUSY);
        }
        ctl.run = None;
        let run = Run::start(self.params)?;
        ctl.last = Some(run.data.clone());
        ctl.run = Some(run);
        Ok(())
    }

    /// Stops the current run, if any, once all its objects are freed.
    fn stop(&self) {
        self.ctl.lock().run = None;
    }

    fn shutdown(&self) {
        let mut ctl = self.ctl.lock();
        ctl.closing = true;
        ctl.run = None;
    }

    fn latest(&self) -> Option<Arc<RunData>> {
        self.ctl.lock().last.clone()
    }
}

fn show_control(bench: &Bench, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match bench.latest() {
        Some(run) => writeln!(f, "{}", run.state_name()),
        None => writeln!(f, "idle"),
    }
}

fn write_control(bench: &Bench, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    match read_command(reader, &mut buf)?.trim() {
        "start" => bench.start(),
        "stop" => {
            bench.stop();
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

fn show_summary(bench: &Bench, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match bench.latest() {
        Some(run) => run.write_summary(f),
        None => writeln!(f, "state: idle"),
    }
}

/// `t_ms outstanding_objects outstanding_bytes` lines, oldest first.
fn show_series(bench: &Bench, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(run) = bench.latest() else {
        return Ok(());
    };
    let obj_size = run.params.obj_size as u64;
    for &(t_ms, objects) in run.series.lock().iter() {
        writeln!(f, "{t_ms} {objects} {}", u64::from(objects) * obj_size)?;
    }
    Ok(())
}

/// `t_ms cpu gp_us` lines, worker by worker, each in the order its callbacks ran.
fn show_gp_samples(bench: &Bench, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(run) = bench.latest() else {
        return Ok(());
    };
    for w in &run.workers {
        for (t_ms, gp_us) in w.gp.iter() {
            writeln!(f, "{t_ms} {} {gp_us}", w.cpu.as_u32())?;
        }
    }
    Ok(())
}

#[pin_data(PinnedDrop)]
struct RcuMembench {
    #[pin]
    bench: Scope<Bench>,
}

impl kernel::InPlaceModule for RcuMembench {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let autostart = module_parameters::autostart.value();
        try_pin_init!(Self {
            bench <- Bench::new(Params::from_module()?),
        })
        .pin_chain(move |this| {
            if autostart {
                this.bench.start()
            } else {
                Ok(())
            }
        })
    }
}

#[pinned_drop]
impl PinnedDrop for RcuMembench {
    fn drop(self: Pin<&mut Self>) {
        self.bench.shutdown();
    }
}
