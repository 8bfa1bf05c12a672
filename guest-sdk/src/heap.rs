//! The memory allocator of `no_std` handlers (`export_handler!(H, no_std)`).
//!
//! A handler instance usually lives for one event: the runtime instantiates it, calls it once
//! and resets its memory. So the allocator is built for a short life:
//!
//! - **No set-up.** Its state starts as zeroes, like the instance's memory; the first
//!   allocation only reads where the heap begins.
//! - **No growth it can avoid.** It first uses the rest of the memory the instance starts
//!   with (from `__heap_base` to the end of the initial pages), and grows the memory by whole
//!   wasm pages only when that runs out. Every page a fresh instance starts with is reset
//!   after it, so a page grown for nothing is paid on every invocation.
//! - **Power-of-two size classes with a free list each.** A freed block is reused by the
//!   next request of its class (the last block cut goes back to the end of the heap
//!   instead), so a handler that allocates and frees in a loop, or an instance kept for a
//!   whole call, does not grow without bound. Blocks are never split or merged: that wastes
//!   at most half of each block and keeps every operation a few instructions. A resize that
//!   changes class moves the block unless it is the last one and nothing of the new class is
//!   free; freeing a block as a smaller class than it was cut would lose its tail.
//!
//! [`Heap`] is the bookkeeping alone, over any [`Memory`], so it is tested natively;
//! `WasmHeap` (wasm only) puts it over the instance's linear memory. Neither is thread-safe: a
//! `wasm32-wasip2` instance has one thread.

use core::alloc::Layout;
use core::ptr;

/// Smallest block: fits a free-list link and the 16-byte alignment of most allocations.
const MIN_BLOCK: usize = 16;
/// Blocks of 16 B up to 2 GiB, more than a handler's memory cap allows.
const CLASSES: usize = 28;

/// Where the heap's memory comes from.
pub trait Memory {
    /// The free span the heap starts with, as `(start, end)` addresses.
    fn initial(&mut self) -> (usize, usize);
    /// Adds at least `bytes` of memory and returns the new span, `None` when refused.
    fn grow(&mut self, bytes: usize) -> Option<(usize, usize)>;
}

/// Size-class bookkeeping over a [`Memory`].
pub struct Heap {
    /// Next free address at the end of the heap; 0 until first use.
    next: usize,
    /// End of the memory the heap may cut blocks from.
    end: usize,
    /// Head of each class's free list (0 when empty); each free block holds the next link.
    free: [usize; CLASSES],
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Heap {
    /// An unused heap.
    pub const fn new() -> Self {
        Self {
            next: 0,
            end: 0,
            free: [0; CLASSES],
        }
    }

    /// The class of blocks that can hold `layout`, and that class's block size.
    fn class(layout: Layout) -> Option<(usize, usize)> {
        let need = layout.size().max(layout.align()).max(MIN_BLOCK);
        let block = need.checked_next_power_of_two()?;
        let class = (block.trailing_zeros() - MIN_BLOCK.trailing_zeros()) as usize;
        (class < CLASSES).then_some((class, block))
    }

    /// Allocates a block for `layout`; null when the memory cannot grow.
    ///
    /// # Safety
    /// `memory` must hand out spans nothing else uses, and the same `memory` must be passed
    /// to every call on this heap.
    pub unsafe fn alloc(&mut self, layout: Layout, memory: &mut impl Memory) -> *mut u8 {
        let Some((class, block)) = Self::class(layout) else {
            return ptr::null_mut();
        };
        let head = self.free[class];
        // A recycled block is at least 16-aligned; rarer, larger alignments get a new block.
        if head != 0 && head.is_multiple_of(layout.align()) {
            // SAFETY: `head` is a freed block of this class, and a freed block stores the
            // address of the next one in its first word.
            self.free[class] = unsafe { (head as *const usize).read() };
            return head as *mut u8;
        }
        self.cut(block, layout.align().max(MIN_BLOCK), memory)
    }

    /// Cuts a new `block`-byte block aligned to `align` from the end of the heap.
    fn cut(&mut self, block: usize, align: usize, memory: &mut impl Memory) -> *mut u8 {
        if self.end == 0 {
            (self.next, self.end) = memory.initial();
        }
        loop {
            let stop = align_up(self.next, align).and_then(|start| start.checked_add(block));
            match stop {
                Some(stop) if stop <= self.end => {
                    let start = stop - block;
                    self.next = stop;
                    return start as *mut u8;
                }
                _ => {}
            }
            // Ask for what this block lacks at the end of the heap; if the memory comes back
            // elsewhere and is too short, the next round asks again from there.
            let lacking = stop.map_or(usize::MAX, |stop| stop - self.end);
            let Some((start, end)) = memory.grow(lacking) else {
                return ptr::null_mut();
            };
            if start != self.end {
                // Not contiguous (something else grew the memory): leave the old tail.
                self.next = start;
            }
            self.end = end;
        }
    }

    /// Returns the block at `ptr`: to the end of the heap when it is the last block cut, else
    /// to its class's free list.
    ///
    /// # Safety
    /// `ptr` must come from this heap with the same `layout`, and not be used afterwards.
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        let Some((class, block)) = Self::class(layout) else {
            return;
        };
        let start = ptr as usize;
        if start + block == self.next {
            // Handing the last block back to the end lets the next request of any class
            // reuse its bytes, which a free list would keep for one class only.
            self.next = start;
            return;
        }
        // SAFETY: the block is at least 16 bytes and 16-aligned, and no longer in use.
        unsafe { (ptr as *mut usize).write(self.free[class]) };
        self.free[class] = start;
    }

    /// Resizes the block at `ptr`: in place when the new size stays within its block, or
    /// when it is the last block cut and the heap has room behind it; otherwise moved.
    ///
    /// # Safety
    /// As for [`Heap::dealloc`]; `new_size` must not overflow `isize` once aligned.
    pub unsafe fn realloc(
        &mut self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        memory: &mut impl Memory,
    ) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let (Some((old_class, old_block)), Some((new_class, new_block))) =
            (Self::class(layout), Self::class(new_layout))
        else {
            return ptr::null_mut();
        };
        let start = ptr as usize;
        if new_class == old_class {
            return ptr;
        }
        if new_class < old_class {
            // Shrinking the last block cut gives its tail back to the end of the heap.
            // Any other block moves to its smaller class and is freed whole: kept in place, it
            // would be freed later as the smaller class and its tail lost, so an instance kept
            // for a whole call would leak on every event (the tail cannot be split off either:
            // blocks are never merged, so the large class would be cut anew each time).
            if start + old_block == self.next {
                self.next = start + new_block;
                return ptr;
            }
            // SAFETY: as for `alloc`; the old block stays valid until it is freed below.
            let moved = unsafe { self.alloc(new_layout, memory) };
            if moved.is_null() {
                // No memory for the copy: keeping the block is still correct, only wasteful.
                return ptr;
            }
            // SAFETY: distinct live blocks; the new size is the smaller one.
            unsafe {
                ptr::copy_nonoverlapping(ptr, moved, new_size);
                self.dealloc(ptr, layout);
            }
            return moved;
        }
        // Growing the last block in place takes fresh bytes from the end of the heap, so it
        // is only done when the new class has no free block to move into. Otherwise a string
        // built by doubling at the end of the heap (128, 256, 512 bytes) would take new bytes
        // on every event of a kept instance while its freed blocks piled up in the list.
        if start + old_block == self.next && self.free[new_class] == 0 {
            if let Some(stop) = start.checked_add(new_block).filter(|&s| s <= self.end) {
                self.next = stop;
                return ptr;
            }
        }
        // SAFETY: as for `alloc`; the old block stays valid until it is freed below.
        let moved = unsafe { self.alloc(new_layout, memory) };
        if !moved.is_null() {
            // SAFETY: distinct live blocks, the old one holding `layout.size()` bytes.
            unsafe {
                ptr::copy_nonoverlapping(ptr, moved, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}

fn align_up(address: usize, align: usize) -> Option<usize> {
    Some(address.checked_add(align - 1)? & !(align - 1))
}

#[cfg(target_arch = "wasm32")]
pub use linear::WasmHeap;

/// The allocator over an instance's linear memory: only exists on wasm.
#[cfg(target_arch = "wasm32")]
mod linear {
    use super::{Heap, Memory};
    use core::alloc::Layout;
    use core::ptr;

    /// The heap over this instance's linear memory, as the global allocator of `no_std`
    /// handlers.
    pub struct WasmHeap(core::cell::UnsafeCell<Heap>);

    // SAFETY: a wasm32-wasip2 instance runs one thread, so the heap is never shared.
    unsafe impl Sync for WasmHeap {}

    impl WasmHeap {
        /// An unused heap.
        pub const fn new() -> Self {
            Self(core::cell::UnsafeCell::new(Heap::new()))
        }
    }

    impl Default for WasmHeap {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Linear memory 0: the linker's `__heap_base` up to the current size, grown by pages.
    struct LinearMemory;

    const WASM_PAGE: usize = 65536;

    impl Memory for LinearMemory {
        fn initial(&mut self) -> (usize, usize) {
            unsafe extern "C" {
                /// Set by `wasm-ld`: the first address after the stack and static data.
                static __heap_base: u8;
            }
            let base = ptr::addr_of!(__heap_base) as usize;
            (base, core::arch::wasm32::memory_size(0) * WASM_PAGE)
        }

        fn grow(&mut self, bytes: usize) -> Option<(usize, usize)> {
            let pages = bytes.div_ceil(WASM_PAGE);
            let old = core::arch::wasm32::memory_grow(0, pages);
            (old != usize::MAX).then(|| (old * WASM_PAGE, (old + pages) * WASM_PAGE))
        }
    }

    // SAFETY: `LinearMemory` hands out memory only this allocator uses (a `no_std` handler
    // has no other allocator), and every call goes through the one `Heap` inside.
    unsafe impl core::alloc::GlobalAlloc for WasmHeap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single-threaded, and the heap is not re-entered while borrowed.
            unsafe { (*self.0.get()).alloc(layout, &mut LinearMemory) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { (*self.0.get()).dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            unsafe { (*self.0.get()).realloc(ptr, layout, new_size, &mut LinearMemory) }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A span of a native buffer handed out in `grow_by`-byte steps.
    struct Buffer {
        bytes: Vec<u128>,
        used: usize,
        initial: usize,
        grow_by: usize,
        grows: usize,
    }

    impl Buffer {
        fn new(capacity: usize, initial: usize, grow_by: usize) -> Self {
            Self {
                bytes: std::vec![0; capacity / 16],
                used: 0,
                initial,
                grow_by,
                grows: 0,
            }
        }
        fn base(&self) -> usize {
            self.bytes.as_ptr() as usize
        }
        fn contains(&self, p: *mut u8, len: usize) -> bool {
            let p = p as usize;
            p >= self.base() && p + len <= self.base() + self.used
        }
    }

    impl Memory for Buffer {
        fn initial(&mut self) -> (usize, usize) {
            self.used = self.initial;
            (self.base(), self.base() + self.initial)
        }
        fn grow(&mut self, bytes: usize) -> Option<(usize, usize)> {
            let step = bytes.div_ceil(self.grow_by) * self.grow_by;
            if self.used + step > self.bytes.len() * 16 {
                return None;
            }
            let start = self.base() + self.used;
            self.used += step;
            self.grows += 1;
            Some((start, start + step))
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_inside_the_memory() {
        let mut memory = Buffer::new(1 << 20, 4096, 65536);
        let mut heap = Heap::new();
        let mut blocks = Vec::new();
        for (i, (size, align)) in [
            (1, 1),
            (24, 8),
            (100, 4),
            (3000, 64),
            (17, 16),
            (5000, 4096),
        ]
        .into_iter()
        .cycle()
        .take(60)
        .enumerate()
        {
            let p = unsafe { heap.alloc(layout(size, align), &mut memory) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "allocation {i} misaligned");
            assert!(memory.contains(p, size));
            unsafe { ptr::write_bytes(p, i as u8, size) };
            blocks.push((p, size, i as u8));
        }
        for &(p, size, fill) in &blocks {
            let bytes = unsafe { core::slice::from_raw_parts(p, size) };
            assert!(bytes.iter().all(|&b| b == fill), "a block was overwritten");
        }
    }

    #[test]
    fn uses_the_initial_span_before_growing() {
        let mut memory = Buffer::new(1 << 20, 12 * 1024, 65536);
        let mut heap = Heap::new();
        for _ in 0..96 {
            assert!(!unsafe { heap.alloc(layout(100, 8), &mut memory) }.is_null());
        }
        assert_eq!(memory.grows, 0, "96 x 128-byte blocks fit in 12 KiB");
        assert!(!unsafe { heap.alloc(layout(8000, 8), &mut memory) }.is_null());
        assert_eq!(memory.grows, 1);
    }

    #[test]
    fn freed_blocks_are_reused_so_loops_do_not_grow() {
        let mut memory = Buffer::new(1 << 20, 4096, 65536);
        let mut heap = Heap::new();
        let keep = unsafe { heap.alloc(layout(40, 8), &mut memory) };
        let sizes = [10, 200, 3000, 40_000];
        let mut after_first_round = 0;
        for round in 0..100_000 {
            let size = sizes[round % sizes.len()];
            let p = unsafe { heap.alloc(layout(size, 8), &mut memory) };
            assert!(!p.is_null());
            unsafe { heap.dealloc(p, layout(size, 8)) };
            if round == sizes.len() - 1 {
                after_first_round = memory.used;
            }
        }
        assert!(!keep.is_null());
        assert_eq!(
            memory.used, after_first_round,
            "the loop kept growing the memory"
        );
        // One round's blocks (64 + 16 + 256 + 4096 + 65536 bytes) and page rounding.
        assert!(memory.used < 2 * 69_968, "grew to {} bytes", memory.used);
    }

    #[test]
    fn realloc_keeps_contents_and_grows_the_last_block_in_place() {
        let mut memory = Buffer::new(1 << 20, 65536, 65536);
        let mut heap = Heap::new();
        let l = layout(20, 1);
        let p = unsafe { heap.alloc(l, &mut memory) };
        unsafe { ptr::copy_nonoverlapping(b"twenty bytes of text".as_ptr(), p, 20) };
        let q = unsafe { heap.realloc(p, l, 30, &mut memory) };
        assert_eq!(q, p, "still within its 32-byte block");
        let r = unsafe { heap.realloc(q, layout(30, 1), 1000, &mut memory) };
        assert_eq!(r, p, "the last block grows in place");
        let other = unsafe { heap.alloc(layout(8, 8), &mut memory) };
        let s = unsafe { heap.realloc(r, layout(1000, 1), 5000, &mut memory) };
        assert_ne!(s, r, "no longer the last block: moved");
        assert!(!other.is_null());
        let text = unsafe { core::slice::from_raw_parts(s, 20) };
        assert_eq!(text, b"twenty bytes of text");
        let t = unsafe { heap.realloc(s, layout(5000, 1), 10, &mut memory) };
        assert_eq!(t, s, "shrinking keeps the block");
        unsafe { heap.dealloc(t, layout(10, 1)) };
        assert_eq!(unsafe { heap.alloc(layout(9, 1), &mut memory) }, t);
    }

    #[test]
    fn shrinking_moves_or_gives_the_tail_back_so_a_kept_instance_does_not_leak() {
        // What a handler does on each event of an instance kept for a call: grow a string,
        // shrink it to fit (to hand it out), free it, with another block cut after it.
        let mut memory = Buffer::new(1 << 20, 4096, 65536);
        let mut heap = Heap::new();
        let mut after_first = 0;
        for round in 0..50_000 {
            let big = unsafe { heap.alloc(layout(3000, 1), &mut memory) };
            let other = unsafe { heap.alloc(layout(24, 8), &mut memory) };
            let small = unsafe { heap.realloc(big, layout(3000, 1), 700, &mut memory) };
            assert!(!small.is_null());
            unsafe {
                heap.dealloc(small, layout(700, 1));
                heap.dealloc(other, layout(24, 8));
            }
            if round == 0 {
                after_first = memory.used;
            }
        }
        assert_eq!(memory.used, after_first, "the loop kept growing the memory");
        // A shrunk block that is not the last one moves, keeping its contents, and its old
        // block is free for the next request of its class.
        let big = unsafe { heap.alloc(layout(4000, 1), &mut memory) };
        unsafe { ptr::write_bytes(big, 7, 4000) };
        let other = unsafe { heap.alloc(layout(24, 8), &mut memory) };
        let small = unsafe { heap.realloc(big, layout(4000, 1), 100, &mut memory) };
        assert_ne!(small, big);
        let kept = unsafe { core::slice::from_raw_parts(small, 100) };
        assert!(kept.iter().all(|&b| b == 7), "the contents did not move");
        assert_eq!(unsafe { heap.alloc(layout(3500, 1), &mut memory) }, big);
        assert!(!other.is_null());
    }

    #[test]
    fn a_string_doubled_at_the_end_of_the_heap_reuses_freed_blocks() {
        // A response built by doubling (128, 256, 512 bytes) while another block stays live
        // behind it, then freed: the pattern of every event of an instance kept for a call.
        let mut memory = Buffer::new(1 << 20, 4096, 65536);
        let mut heap = Heap::new();
        let mut after_first = 0;
        for round in 0..10_000 {
            let event = unsafe { heap.alloc(layout(613, 1), &mut memory) };
            let s = unsafe { heap.alloc(layout(100, 1), &mut memory) };
            let s = unsafe { heap.realloc(s, layout(100, 1), 200, &mut memory) };
            let s = unsafe { heap.realloc(s, layout(200, 1), 400, &mut memory) };
            assert!(!event.is_null() && !s.is_null());
            unsafe {
                heap.dealloc(event, layout(613, 1));
                heap.dealloc(s, layout(400, 1));
            }
            if round == 1 {
                after_first = heap.next;
            }
        }
        assert_eq!(
            heap.next, after_first,
            "each round took new bytes from the end"
        );
    }

    #[test]
    fn refused_growth_and_impossible_sizes_return_null() {
        let mut memory = Buffer::new(128 * 1024, 4096, 65536);
        let mut heap = Heap::new();
        assert!(unsafe { heap.alloc(layout(200_000, 8), &mut memory) }.is_null());
        assert!(unsafe { heap.alloc(layout(usize::MAX / 4, 8), &mut memory) }.is_null());
        assert!(!unsafe { heap.alloc(layout(1000, 8), &mut memory) }.is_null());
    }
}
