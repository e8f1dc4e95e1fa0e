// SPDX-License-Identifier: GPL-2.0

//! A C `struct rw_semaphore` with guards, shared by our modules (`#[path]`-included by each).

// Each including module uses only part of this file.
#![allow(dead_code)]

use core::pin::Pin;
use kernel::{
    bindings,
    prelude::*,
    sync::LockClassKey,
    types::{NotThreadSafe, Opaque}, //
};

/// A `struct rw_semaphore`.
#[pin_data]
pub(crate) struct RwSem {
    #[pin]
    sem: Opaque<bindings::rw_semaphore>,
}

// SAFETY: An rwsem may be taken and released from any task.
unsafe impl Send for RwSem {}
// SAFETY: Its operations take `&self` and are serialised by the rwsem itself.
unsafe impl Sync for RwSem {}

impl RwSem {
    pub(crate) fn new(name: &'static CStr, key: Pin<&'static LockClassKey>) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes; `name` and `key` live forever.
            sem <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_rwsem(slot, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }

    pub(crate) fn read(&self) -> RwSemGuard<'_> {
        // SAFETY: The rwsem was initialised by `new` and is pinned.
        unsafe { bindings::down_read(self.sem.get()) };
        // INVARIANT: Held for reading.
        RwSemGuard {
            sem: self,
            write: false,
            _not_send: NotThreadSafe,
        }
    }

    pub(crate) fn write(&self) -> RwSemGuard<'_> {
        // SAFETY: As for `read`.
        unsafe { bindings::down_write(self.sem.get()) };
        // INVARIANT: Held for writing.
        RwSemGuard {
            sem: self,
            write: true,
            _not_send: NotThreadSafe,
        }
    }
}

/// # Invariants
///
/// This task holds `sem`, for writing if `write`, else for reading.
pub(crate) struct RwSemGuard<'a> {
    sem: &'a RwSem,
    write: bool,
    _not_send: NotThreadSafe,
}

impl Drop for RwSemGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this task holds the rwsem in the mode it releases.
        unsafe {
            if self.write {
                bindings::up_write(self.sem.sem.get());
            } else {
                bindings::up_read(self.sem.sem.get());
            }
        }
    }
}
