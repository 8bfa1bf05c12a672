//! A `no_std` handler that misbehaves on request, for the runtime's tests of what
//! `sma_guest::export_handler!(H, no_std)` supplies: the allocator and the panic handler.
//!
//! The mode is the event's `TransactionAttributes.mode`:
//! `trap` (panics with a message), `oom` (allocates without bound), `loop` (never returns),
//! `churn` (allocates and frees 256 MiB in 1 MiB blocks, which fits a 16 MiB cap only if freed
//! memory is reused), otherwise a valid `Hangup`.

#![cfg_attr(target_arch = "wasm32", no_std)]

use sma_guest::prelude::*;
use sma_guest::{actions, Handler, InvocationEvent, Response};

struct ChaosNoStd;

impl Handler for ChaosNoStd {
    fn handle(event: InvocationEvent) -> Result<Response, String> {
        let call_id = event
            .invoking_participant()
            .map(|p| p.call_id.clone())
            .unwrap_or_default();
        match event.attribute("mode").unwrap_or("ok") {
            "trap" => panic!("no_std chaos guest asked to trap"),
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    core::hint::black_box(&hoard);
                }
            }
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = core::hint::black_box(x.wrapping_add(1));
                }
            }
            "churn" => {
                let mut total = 0u64;
                for round in 0..256usize {
                    let block = vec![round as u8; 1 << 20];
                    total += core::hint::black_box(&block).len() as u64;
                }
                Ok(Response::new()
                    .action(actions::hangup(&call_id).into())
                    .attribute("churned", format!("{total}")))
            }
            _ => Ok(Response::new().action(actions::hangup(&call_id).into())),
        }
    }
}

sma_guest::export_handler!(ChaosNoStd, no_std);
