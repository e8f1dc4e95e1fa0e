// SPDX-License-Identifier: GPL-2.0

//! Makes the kernel report a splat on purpose, so that the suite can show that its console
//! oracle (scripts/console-check) fails a run that has one: tests/scripts/splat_oracle.sh loads
//! it in throwaway VMs. A WARN taints the kernel; load it nowhere else.

use kernel::{new_mutex, prelude::*};

#[path = "../../common/param.rs"]
mod param;

module! {
    type: SplatProbe,
    name: "splat_probe",
    authors: ["eCS suite developers"],
    description: "Trigger a WARN or a lockdep report on purpose, to test the splat oracle",
    license: "GPL",
    params: {
        splat: u32 {
            default: 0,
            description: "0: nothing; 1: a WARN_ON(); 2: two mutexes taken in both orders (lockdep)",
        },
    },
}

/// What `splat=` asks for.
const NOTHING: u32 = 0;
const WARN: u32 = 1;
const LOCK_INVERSION: u32 = 2;

struct SplatProbe;

/// Takes `a` then `b`, then `b` then `a`: an AB-BA order that lockdep reports as a possible
/// circular locking dependency. One thread takes both orders one after the other, so it cannot
/// deadlock.
fn lock_inversion() -> Result {
    let a = KBox::pin_init(new_mutex!((), "splat_probe_a"), GFP_KERNEL)?;
    let b = KBox::pin_init(new_mutex!((), "splat_probe_b"), GFP_KERNEL)?;
    {
        let _a = a.lock();
        let _b = b.lock();
    }
    let _b = b.lock();
    let _a = a.lock();
    Ok(())
}

impl kernel::Module for SplatProbe {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let splat = param::in_range(
            "splat",
            module_parameters::splat.value(),
            NOTHING,
            LOCK_INVERSION,
        )?;
        match splat {
            WARN => {
                kernel::warn_on!(true);
            }
            LOCK_INVERSION => lock_inversion()?,
            _ => {}
        }
        pr_info!("splat={splat} done\n");
        Ok(SplatProbe)
    }
}
