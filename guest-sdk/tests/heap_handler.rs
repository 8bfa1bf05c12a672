//! A handler kept for a whole call (one instance, event after event) must not grow its memory:
//! runs the export's allocation pattern — the event string handed in through `cabi_realloc`,
//! the response boxed and freed by length as the canonical ABI's post-return does — with the
//! `no_std` heap as this process's global allocator, and checks that the memory stops growing.

use sma_guest::actions::CollectDigits;
use sma_guest::heap::{Heap, Memory};
use sma_guest::{actions, EventType, Handler, InvocationEvent, Response};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;

/// A fixed arena handed to the heap in 64 KiB pages, like a wasm linear memory.
struct Arena {
    base: usize,
    used: usize,
    capacity: usize,
}

impl Memory for Arena {
    fn initial(&mut self) -> (usize, usize) {
        (self.base, self.base)
    }
    fn grow(&mut self, bytes: usize) -> Option<(usize, usize)> {
        let step = bytes.div_ceil(65536) * 65536;
        if self.used + step > self.capacity {
            return None;
        }
        let start = self.base + self.used;
        self.used += step;
        Some((start, start + step))
    }
}

struct Global(Mutex<Option<(Heap, Arena)>>);

const ARENA: usize = 256 << 20;

unsafe impl GlobalAlloc for Global {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (heap, arena) = state.get_or_insert_with(|| {
            // The arena itself comes from the system allocator, before the heap exists.
            let base =
                unsafe { std::alloc::System.alloc(Layout::from_size_align(ARENA, 65536).unwrap()) };
            assert!(!base.is_null());
            (
                Heap::new(),
                Arena {
                    base: base as usize,
                    used: 0,
                    capacity: ARENA,
                },
            )
        });
        unsafe { heap.alloc(layout, arena) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some((heap, _)) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            unsafe { heap.dealloc(ptr, layout) }
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (heap, arena) = state.as_mut().expect("allocated before");
        unsafe { heap.realloc(ptr, layout, new_size, arena) }
    }
}

#[global_allocator]
static GLOBAL: Global = Global(Mutex::new(None));

fn used() -> usize {
    GLOBAL
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(0, |(_, arena)| arena.used)
}

/// Answers like the IVR example: a menu with a regex, logs a line, sets attributes.
struct Menu;

impl Handler for Menu {
    fn handle(event: InvocationEvent) -> Result<Response, String> {
        let call_id = event
            .invoking_participant()
            .map(|p| p.call_id.clone())
            .ok_or("event has no participants")?;
        let line = format!("new call from {}", event.call_details.participants[0].from);
        assert!(!line.is_empty());
        Ok(match event.invocation_event_type {
            EventType::NewInboundCall => Response::new()
                .action(
                    actions::speak_and_get_digits(
                        &call_id,
                        "For sales, press 1.",
                        "Sorry.",
                        (1, 1),
                        5000,
                    )
                    .attempts(3)
                    .regex("^[12]$")
                    .into(),
                )
                .attribute("menu", "main"),
            _ => Response::new().action(actions::hangup(&call_id).into()),
        })
    }
}

/// One invocation as the component's export runs it.
fn invoke(event: &str) -> usize {
    // The host copies the event in through `cabi_realloc`; the lifted `String` owns it.
    let arg = unsafe { sma_guest::__cabi_realloc(std::ptr::null_mut(), 0, 1, event.len()) };
    unsafe { std::ptr::copy_nonoverlapping(event.as_ptr(), arg, event.len()) };
    let arg = unsafe { String::from_raw_parts(arg, event.len(), event.len()) };
    let out = sma_guest::dispatch::<Menu>(&arg).expect("the handler answers");
    drop(arg);
    // Lowering boxes the string; post-return frees it by its length.
    let boxed = out.into_bytes().into_boxed_slice();
    let (ptr, len) = (boxed.as_ptr().cast_mut(), boxed.len());
    std::mem::forget(boxed);
    unsafe { std::alloc::dealloc(ptr, Layout::from_size_align(len, 1).unwrap()) };
    len
}

fn main() {
    let event = include_str!("../../actions/tests/fixtures/events/new_inbound_call.json");
    let event: InvocationEvent = serde_json::from_str(event).expect("fixture");
    let event = serde_json::to_string(&event).expect("serialize");
    for _ in 0..1000 {
        assert!(invoke(&event) > 100);
    }
    let warm = used();
    for _ in 0..200_000 {
        invoke(&event);
    }
    let after = used();
    println!("memory after 1,000 invocations: {warm} B; after 201,000: {after} B");
    assert_eq!(
        after, warm,
        "an instance kept for a call leaks on every event"
    );
    println!("test heap_handler ... ok");
}
