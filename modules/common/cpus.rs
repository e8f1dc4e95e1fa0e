// SPDX-License-Identifier: GPL-2.0

//! The kernel's CPU masks and the CPUs that have per-CPU memory, shared by our modules
//! (`#[path]`-included by each).

// Each including module uses only part of this file.
#![allow(dead_code)]

use kernel::{
    bindings,
    cpu::{nr_cpu_ids, CpuId},
    cpumask::Cpumask,
    prelude::*,
};

/// `cpu_online_mask`.
///
/// Read without `cpus_read_lock()`, a concurrent hotplug can only make an answer stale.
pub(crate) fn online_mask() -> &'static Cpumask {
    // SAFETY: `__cpu_online_mask` is a static of the kernel, which outlives every module, and the
    // cpumask functions read it with atomic bit operations.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) }
}

/// `cpu_possible_mask`, which does not change after boot.
pub(crate) fn possible_mask() -> &'static Cpumask {
    // SAFETY: As for `online_mask`.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_possible_mask) }
}

/// The CPUs of `mask`, in order.
pub(crate) fn cpus_in(mask: &'static Cpumask) -> impl Iterator<Item = CpuId> {
    (0..nr_cpu_ids())
        .filter_map(CpuId::from_u32)
        .filter(move |&cpu| mask.test(cpu))
}

/// The first `limit` online CPUs, or all of them if `limit` is 0.
pub(crate) fn online_cpus(limit: u32) -> Result<KVec<CpuId>> {
    let mut cpus = KVec::new();
    for cpu in cpus_in(online_mask()) {
        if limit == 0 || cpus.len() < limit as usize {
            cpus.push(cpu, GFP_KERNEL)?;
        }
    }
    Ok(cpus)
}

/// A CPU that has per-CPU memory: a possible CPU.
///
/// A [`CpuId`] only promises a number below `nr_cpu_ids`; `per_cpu()` of a number that is not a
/// possible CPU reads memory that belongs to no CPU.
///
/// # Invariants
///
/// `cpu_possible_mask` has the CPU.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PossibleCpu(CpuId);

impl PossibleCpu {
    /// `cpu`, if it is possible.
    pub(crate) fn of(cpu: CpuId) -> Option<Self> {
        // INVARIANT: Checked against the mask, which does not change after boot.
        possible_mask().test(cpu).then_some(Self(cpu))
    }

    /// The CPU this code runs on, which is online and so possible. It may change right after,
    /// unless the caller keeps the task on its CPU.
    pub(crate) fn current() -> Self {
        // INVARIANT: A CPU that runs code is online, and online CPUs are possible.
        Self(CpuId::current())
    }

    /// The CPU's number.
    pub(crate) fn id(self) -> CpuId {
        self.0
    }

    /// The CPU's number as C takes it.
    pub(crate) fn as_u32(self) -> u32 {
        self.0.as_u32()
    }
}
