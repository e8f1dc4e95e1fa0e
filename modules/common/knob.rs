// SPDX-License-Identifier: GPL-2.0

//! Writes to our debugfs knobs, shared by our modules (`#[path]`-included by each).

use kernel::{prelude::*, uaccess::UserSliceReader};

/// The text written to a knob, read into `buf`; `EINVAL` if longer than `buf` or not UTF-8.
pub(crate) fn read_command<'a>(reader: &mut UserSliceReader, buf: &'a mut [u8]) -> Result<&'a str> {
    let cmd = buf.get_mut(..reader.len()).ok_or(EINVAL)?;
    reader.read_slice(cmd)?;
    core::str::from_utf8(cmd).map_err(|_| EINVAL)
}
