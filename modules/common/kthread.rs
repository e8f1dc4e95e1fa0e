// SPDX-License-Identifier: GPL-2.0

//! Kernel threads bound to CPUs, shared by our modules (`#[path]`-included by each).

// Each including module uses only part of this file.
#![allow(dead_code)]

use core::ptr::NonNull;
use kernel::{
    bindings,
    cpu::CpuId,
    error::from_err_ptr,
    prelude::*,
    sync::aref::ARef,
    task::Task,
    types::NotThreadSafe, //
};

/// The body of a [`KThread`].
pub(crate) trait ThreadFn: Send + 'static {
    /// Runs in the new thread; `ctx` tells it when to stop.
    fn run(self, ctx: &ThreadCtx);
}

/// What only the code of a [`KThread`] may ask.
///
/// # Invariants
///
/// Only exists on the stack of a thread started by [`KThread::spawn`], i.e. of a kthread.
pub(crate) struct ThreadCtx(NotThreadSafe);

impl ThreadCtx {
    /// Whether the [`KThread`] handle is being dropped.
    pub(crate) fn should_stop(&self) -> bool {
        // SAFETY: By the type invariant the current task is a kthread, the one kind of task
        // `kthread_should_stop()` may be asked about.
        unsafe { bindings::kthread_should_stop() }
    }

    /// CPU time this thread has consumed so far, in nanoseconds.
    pub(crate) fn cpu_time_ns(&self) -> u64 {
        let task = Task::current_raw();
        // SAFETY: `current` is valid while it runs. Only the scheduler writes our
        // `se.sum_exec_runtime`, on this CPU; an aligned 64-bit volatile read cannot tear and at
        // worst misses the running slice.
        unsafe { core::ptr::read_volatile(&raw const (*task).se.sum_exec_runtime) }
    }
}

/// A kernel thread that runs a [`ThreadFn`], stopped and reaped when dropped.
///
/// Dropping the handle before the thread has first run skips the body (`kthread_stop()` does
/// that), which then is only dropped: a caller that needs the body to run waits for it first.
///
/// # Invariants
///
/// `task` is a kthread made by `kthread_create_on_node()` with `Self::main` and `slot` as
/// argument, already woken and not yet stopped. `slot` comes from [`KBox::into_raw`]; only that
/// thread uses it until `kthread_stop()` in `drop` returns.
pub(crate) struct KThread<T: ThreadFn> {
    task: ARef<Task>,
    slot: *mut Option<T>,
}

// SAFETY: The handle only stops and reaps its thread, which any task may do, and the body it
// handed to the thread is `Send`.
unsafe impl<T: ThreadFn> Send for KThread<T> {}

// SAFETY: A shared `&KThread` offers no operation at all.
unsafe impl<T: ThreadFn> Sync for KThread<T> {}

impl<T: ThreadFn> KThread<T> {
    /// Starts a thread called `name` running `body`, bound to `cpu` if one is given.
    pub(crate) fn spawn(body: T, name: &CStr, cpu: Option<CpuId>) -> Result<Self> {
        let slot = KBox::into_raw(KBox::new(Some(body), GFP_KERNEL)?);
        // SAFETY: `Self::main` is a thread function that expects `slot`. The name goes through
        // "%s", so it is never parsed as a format; the kernel copies it.
        let raw = unsafe {
            bindings::kthread_create_on_node(
                Some(Self::main),
                slot.cast(),
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let task = match from_err_ptr(raw).and_then(|task| NonNull::new(task).ok_or(ENOMEM)) {
            Ok(task) => task,
            Err(e) => {
                // SAFETY: No thread was made, so the slot from `into_raw` above is still ours.
                drop(unsafe { KBox::from_raw(slot) });
                return Err(e);
            }
        };
        // SAFETY: `task` is a live task (the kthread cannot exit before it is woken); the
        // reference taken here is the one the `ARef` owns. `Task` is a transparent wrapper of
        // `task_struct`.
        let task: ARef<Task> = unsafe {
            bindings::get_task_struct(task.as_ptr());
            ARef::from_raw(task.cast())
        };
        // SAFETY: `task` is a new kthread that sleeps until woken and has not run `main` yet,
        // so it may still be bound to a CPU.
        unsafe {
            if let Some(cpu) = cpu {
                bindings::kthread_bind(task.as_ptr(), cpu.as_u32());
            }
            bindings::wake_up_process(task.as_ptr());
        }
        // INVARIANT: Made with `main` and `slot`, woken above.
        Ok(Self { task, slot })
    }

    /// The thread function.
    ///
    /// # Safety
    ///
    /// `slot` must be the argument [`Self::spawn`] gave the thread.
    unsafe extern "C" fn main(slot: *mut c_void) -> c_int {
        // SAFETY: By the safety requirement and the `KThread` invariant, this thread is the only
        // user of the slot until `kthread_stop_put()` returns, which is after we return.
        let body = unsafe { (*slot.cast::<Option<T>>()).take() };
        if let Some(body) = body {
            // INVARIANT: This is the kthread that `spawn` started.
            body.run(&ThreadCtx(NotThreadSafe));
        }
        0
    }
}

impl<T: ThreadFn> Drop for KThread<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `task` is a kthread not stopped yet, kept alive by our
        // `ARef`. `kthread_stop()` stops it (or reaps it if its body has returned) and waits
        // until it has exited; the `ARef` drops the reference after this.
        unsafe { bindings::kthread_stop(self.task.as_ptr()) };
        // SAFETY: The thread has exited, so the slot, from `KBox::into_raw`, is ours again.
        drop(unsafe { KBox::from_raw(self.slot) });
    }
}
