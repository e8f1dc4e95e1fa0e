// SPDX-License-Identifier: GPL-2.0

//! A C `rwlock_t` with guards, shared by our modules (`#[path]`-included by each); the Rust
//! kernel crate has no rwlock. It goes through the C helpers of guest-patches/0012, which
//! initialise and take it as C does on every configuration (an all-zero `rwlock_t` is not
//! unlocked on PREEMPT_RT).

// Each including module uses only part of this file.
#![allow(dead_code)]

use core::pin::Pin;
use kernel::{
    bindings,
    prelude::*,
    sync::LockClassKey,
    types::{NotThreadSafe, Opaque}, //
};

/// An `rwlock_t`.
#[pin_data]
pub(crate) struct RwLock {
    #[pin]
    lock: Opaque<bindings::rwlock_t>,
}

// SAFETY: An rwlock may be taken and released on any CPU.
unsafe impl Send for RwLock {}
// SAFETY: Its operations take `&self` and are serialised by the rwlock itself.
unsafe impl Sync for RwLock {}

impl RwLock {
    pub(crate) fn new(name: &'static CStr, key: Pin<&'static LockClassKey>) -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes; `name` and `key` live forever.
            lock <- Opaque::ffi_init(|slot| unsafe {
                bindings::rwlock_init(slot, name.as_char_ptr(), key.as_ptr())
            }),
        })
    }

    pub(crate) fn read(&self) -> RwLockGuard<'_> {
        // SAFETY: The rwlock was initialised by `new` and is pinned.
        unsafe { bindings::read_lock(self.lock.get()) };
        // INVARIANT: Held for reading.
        RwLockGuard {
            lock: self,
            write: false,
            _not_send: NotThreadSafe,
        }
    }

    pub(crate) fn write(&self) -> RwLockGuard<'_> {
        // SAFETY: As for `read`.
        unsafe { bindings::write_lock(self.lock.get()) };
        // INVARIANT: Held for writing.
        RwLockGuard {
            lock: self,
            write: true,
            _not_send: NotThreadSafe,
        }
    }
}

/// # Invariants
///
/// This CPU holds `lock`, for writing if `write`, else for reading.
pub(crate) struct RwLockGuard<'a> {
    lock: &'a RwLock,
    write: bool,
    _not_send: NotThreadSafe,
}

impl Drop for RwLockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this CPU holds the rwlock in the mode it releases.
        unsafe {
            if self.write {
                bindings::write_unlock(self.lock.lock.get());
            } else {
                bindings::read_unlock(self.lock.lock.get());
            }
        }
    }
}
