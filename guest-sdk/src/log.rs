//! Logging into the runtime's log (the `sma:handler/log` import). Lines are tagged with the
//! call's TransactionId by the runtime. Off wasm (a handler's native unit tests) lines go to
//! standard error instead, since there is no host to import from.

use crate::bindings::sma::handler::log::Level;

fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::sma::handler::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    std::eprintln!("[{level:?}] {message}");
}

/// Logs at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    write(Level::Error, message);
}
