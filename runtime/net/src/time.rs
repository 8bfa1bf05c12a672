//! Timer helpers shared by the IO shells around sans-IO cores.

use std::time::Instant;

/// Sleeps until a core's next deadline, or forever when it has none: the timer branch of a
/// shell's `select!`.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
