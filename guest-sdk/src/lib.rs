//! Write sma SIP media application handlers in Rust.
//!
//! A handler implements [`Handler`] — typed [`InvocationEvent`] in, [`Response`] out — and is
//! exported with [`export_handler!`]. Built with `cargo build --target wasm32-wasip2`, the crate
//! is a component of the `sma:handler/sip-media-application` world that `sma` runs.
//!
//! ```ignore
//! use sma_guest::{actions, Handler, InvocationEvent, Response};
//!
//! struct Hello;
//! impl Handler for Hello {
//!     fn handle(event: InvocationEvent) -> Result<Response, String> {
//!         let call_id = event.invoking_participant().map(|p| p.call_id.clone()).unwrap_or_default();
//!         Ok(Response::new().action(actions::speak(&call_id, "Hello!").into()))
//!     }
//! }
//! sma_guest::export_handler!(Hello);
//! ```
//!
//! # `no_std` handlers: the fast path
//!
//! A crate that links the standard library on `wasm32-wasip2` imports WASI interfaces
//! (stdio, environment, exit, terminals) for `std`'s panic and I/O machinery, even when the
//! handler never calls them, and every fresh instance pays to instantiate them: about 3 µs
//! of an 8 µs minimal invocation. A handler that needs nothing from `std` beyond `alloc`
//! can leave it out: `#![no_std]` on wasm (keep `std` for native unit tests) and the
//! `no_std` form of the export macro, which supplies what `std` would have — the memory
//! allocator ([`heap`]), the panic handler (the message goes to the runtime's log at error
//! level and into the trap report) and the `cabi_realloc` export. The component then
//! imports only `sma:handler/log`. [`prelude`] has the `alloc` names such a crate needs.
//!
//! ```ignore
//! #![cfg_attr(target_arch = "wasm32", no_std)]
//! use sma_guest::prelude::*;
//! // ... the handler as above ...
//! sma_guest::export_handler!(Hello, no_std);
//! ```
//!
//! The SDK itself never links `std` on wasm, so both kinds of handler build from it.
//!
//! Link a `no_std` handler with `-C link-arg=--import-memory` as well (it needs
//! `wasm-component-ld` 0.5.31 or newer as the linker; the one rustc 1.95 ships refuses it).
//! The `log` import reads a string from the handler's memory; with a memory the module defines
//! itself, the component needs two more core modules to hand that import in after
//! instantiation, and every fresh instance pays for them. The workspace README has the
//! figures.

#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

// Lets the generated bindings name this crate by its public path from inside it too.
extern crate self as sma_guest;

pub mod actions;
pub mod heap;
pub mod log;

/// The `alloc` names a `no_std` handler uses where `std`'s prelude would provide them.
pub mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::boxed::Box;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

use alloc::format;
use alloc::string::String;

pub use sma_actions::*;

#[doc(hidden)]
pub use serde_json as __serde_json;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Bindings generated from `wit/handler.wit`.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sip-media-application",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "::sma_guest::bindings",
        runtime_path: "::sma_guest::__wit_bindgen::rt",
    });
}

/// A SIP media application handler.
pub trait Handler {
    /// Decides what happens next for one invocation event.
    ///
    /// Return `Err` only when no response can be produced at all: the runtime then treats the
    /// invocation as failed and tries the next target application. To refuse a caller, return
    /// a `Hangup` action instead.
    fn handle(event: InvocationEvent) -> Result<Response, String>;
}

/// Parses the event, runs `H`, and serializes its response: what the exported
/// `handle-event` does. Public so handlers can be unit-tested natively.
pub fn dispatch<H: Handler>(event_json: &str) -> Result<String, String> {
    let event: InvocationEvent = serde_json::from_str(event_json)
        .map_err(|e| format!("event is not a valid invocation event: {e}"))?;
    H::handle(event).map(|response| response.to_json())
}

/// Exports a [`Handler`] as the component's `handle-event`.
///
/// `export_handler!(H)` is for crates that use `std`. `export_handler!(H, no_std)` is for
/// `#![no_std]` crates: on wasm it also defines the global allocator, the panic handler and
/// the `cabi_realloc` export that `std` and its C library would otherwise provide.
#[macro_export]
macro_rules! export_handler {
    ($handler:ty, no_std) => {
        $crate::export_handler!($handler);

        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static __SMA_GUEST_HEAP: $crate::heap::WasmHeap = $crate::heap::WasmHeap::new();

        #[cfg(target_arch = "wasm32")]
        #[panic_handler]
        fn __sma_guest_panic(info: &::core::panic::PanicInfo) -> ! {
            $crate::__panic(info)
        }

        /// `memcmp`, which Rust's `core` calls for slice and string comparison and the C
        /// library provides when `std` is linked.
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
            // SAFETY: the caller passes two readable spans of `len` bytes.
            unsafe { $crate::__memcmp(a, b, len) }
        }

        /// The canonical ABI's allocator entry point (std's C library exports it otherwise).
        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn cabi_realloc(
            old: *mut u8,
            old_len: usize,
            align: usize,
            new_len: usize,
        ) -> *mut u8 {
            // SAFETY: the component ABI passes back exactly what it was given.
            unsafe { $crate::__cabi_realloc(old, old_len, align, new_len) }
        }
    };
    ($handler:ty) => {
        #[doc(hidden)]
        pub struct __SmaGuestExport;

        impl $crate::bindings::Guest for __SmaGuestExport {
            fn handle_event(
                event: $crate::prelude::String,
            ) -> ::core::result::Result<$crate::prelude::String, $crate::prelude::String> {
                $crate::dispatch::<$handler>(&event)
            }
        }

        $crate::bindings::export!(__SmaGuestExport with_types_in $crate::bindings);
    };
}

/// `cabi_realloc` of `no_std` handlers, over the global allocator.
///
/// # Safety
/// The canonical ABI's contract: `old`/`old_len`/`align` describe a block this function
/// returned (or `old_len` is 0), and `align` is a power of two.
#[doc(hidden)]
pub unsafe fn __cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{alloc, realloc, Layout};
    let block = if old_len == 0 {
        if new_len == 0 {
            return align as *mut u8;
        }
        match Layout::from_size_align(new_len, align) {
            // SAFETY: non-zero size.
            Ok(layout) => unsafe { alloc(layout) },
            Err(_) => core::ptr::null_mut(),
        }
    } else {
        match Layout::from_size_align(old_len, align) {
            // SAFETY: the caller passes a live block and its layout.
            Ok(layout) => unsafe { realloc(old, layout, new_len) },
            Err(_) => core::ptr::null_mut(),
        }
    };
    if block.is_null() {
        // Out of memory (the runtime refused to grow it): nothing sensible to return.
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
    }
    block
}

/// `memcmp` of `no_std` handlers: the sign of the first differing byte pair.
///
/// # Safety
/// `a` and `b` must each be readable for `len` bytes.
#[doc(hidden)]
pub unsafe fn __memcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
    for i in 0..len {
        // SAFETY: `i < len`, within both spans.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub use panic::__panic;

/// The panic path of `no_std` handlers: only exists on wasm.
#[cfg(target_arch = "wasm32")]
mod panic {
    use crate::log;

    /// The panic handler of `no_std` handlers: the message goes to the runtime's log at
    /// error level (the runtime adds the last such line to the trap it reports), then the
    /// instance traps.
    pub fn __panic(info: &core::panic::PanicInfo) -> ! {
        use core::fmt::Write;
        use core::sync::atomic::{AtomicBool, Ordering};
        static PANICKING: AtomicBool = AtomicBool::new(false);
        // A panic while reporting one (say, out of memory) traps at once. The message is built
        // in a fixed buffer, since the panic may be an allocation failure.
        if !PANICKING.swap(true, Ordering::Relaxed) {
            let mut line = PanicLine {
                buf: [0; 512],
                len: 0,
            };
            let _ = write!(line, "panicked: {info}");
            log::error(line.as_str());
        }
        core::arch::wasm32::unreachable()
    }

    /// A panic message truncated to a fixed buffer at a character boundary.
    struct PanicLine {
        buf: [u8; 512],
        len: usize,
    }

    impl PanicLine {
        fn as_str(&self) -> &str {
            core::str::from_utf8(&self.buf[..self.len]).unwrap_or("panicked")
        }
    }

    impl core::fmt::Write for PanicLine {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let room = self.buf.len() - self.len;
            let mut take = s.len().min(room);
            while !s.is_char_boundary(take) {
                take -= 1;
            }
            self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
            self.len += take;
            Ok(())
        }
    }
}
