// SPDX-License-Identifier: GPL-2.0

//! What a paravirtualised guest learns from its hypervisor about its vCPUs, shared by our
//! modules (`#[path]`-included by each, with `cpus.rs`).

// Each including module uses only part of this file.
#![allow(dead_code)]

use super::cpus::PossibleCpu;
use kernel::{bindings, ffi::c_int};

/// Nanoseconds the hypervisor has kept `cpu`'s vCPU from running while it was runnable (its
/// steal time), or 0 without a hypervisor that reports it.
///
/// The host updates the count before it resumes the vCPU, so a vCPU that reads its own count
/// before and after a stretch of code sees it grow if and only if it was preempted there.
pub(crate) fn steal_clock_ns(cpu: PossibleCpu) -> u64 {
    // SAFETY: `cpu` is possible (type invariant), so its per-CPU steal time area exists; the
    // helper only reads it. A `u32` below `nr_cpu_ids` fits in a C `int`.
    unsafe { bindings::paravirt_steal_clock(cpu.as_u32() as c_int) }
}

/// Whether the hypervisor has preempted `cpu`'s vCPU right now; always false without one.
pub(crate) fn vcpu_is_preempted(cpu: PossibleCpu) -> bool {
    // SAFETY: As for `steal_clock_ns`: the helper only reads `cpu`'s steal time area.
    unsafe { bindings::vcpu_is_preempted(cpu.as_u32() as c_int) }
}
