//! Memory hints for large tables read and written at random (vocabulary
//! hash tables, model weights, gradient buffers). Both are hints: where the
//! platform lacks them, or the kernel declines, nothing changes but speed.
//!
//! ```
//! let table = vec![0u64; 1 << 20];
//! sparky_memhint::huge_pages(&table);
//! sparky_memhint::prefetch(table.as_ptr().wrapping_add(12_345));
//! assert_eq!(table[12_345], 0);
//! ```

/// Asks for transparent huge pages under a large array (4 MiB or more)
/// before it is touched: random accesses then miss the TLB far less.
pub fn huge_pages<T>(v: &[T]) {
    let (start, len) = (v.as_ptr() as usize, size_of_val(v));
    let (lo, hi) = ((start + 4095) & !4095, (start + len) & !4095);
    #[cfg(target_os = "linux")]
    if hi > lo && len >= 4 << 20 {
        // SAFETY: the range lies inside the allocation; MADV_HUGEPAGE does not change its contents.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (lo, hi);
}

/// Asks the CPU to start loading the cache line at `p`, so that several
/// random accesses' memory latencies overlap.
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address, and reads nothing.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
