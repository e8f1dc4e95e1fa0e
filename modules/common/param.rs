// SPDX-License-Identifier: GPL-2.0

//! Module parameter checks, shared by our modules (`#[path]`-included by each).

use kernel::prelude::*;

/// `value` if it lies in `min..=max`, else `EINVAL` and an error that names the parameter.
pub(crate) fn in_range<T: Copy + PartialOrd + Into<u64>>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        pr_err!(
            "{name}={} is out of range [{}, {}]\n",
            value.into(),
            min.into(),
            max.into()
        );
        Err(EINVAL)
    }
}
