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

// Lets the generated bindings name this crate by its public path from inside it too.
extern crate self as sma_guest;

pub mod actions;
pub mod log;

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
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        #[doc(hidden)]
        pub struct __SmaGuestExport;

        impl $crate::bindings::Guest for __SmaGuestExport {
            fn handle_event(
                event: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $crate::dispatch::<$handler>(&event)
            }
        }

        $crate::bindings::export!(__SmaGuestExport with_types_in $crate::bindings);
    };
}
