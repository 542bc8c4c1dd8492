//! Memory hints, in one place: transparent huge pages and cache-line
//! prefetch for large tables read and written at random (vocabulary hash
//! tables, model weights, gradient buffers), and access-pattern and release
//! hints for file mappings (`sparky-io`'s `MappedFile`). All are hints: where
//! the platform lacks them, or the kernel declines, nothing changes but
//! speed and resident memory.
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

/// How a file mapping will be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Front to back: the kernel reads ahead aggressively.
    Sequential,
    /// In no particular order (shuffled blocks): no aggressive read-ahead,
    /// which would map pages far from the block being read.
    Normal,
}

/// Tells the kernel how the mapping `map` will be read.
pub fn advise(map: &memmap2::Mmap, access: Access) {
    #[cfg(unix)]
    {
        let advice = match access {
            Access::Sequential => memmap2::Advice::Sequential,
            Access::Normal => memmap2::Advice::Normal,
        };
        let _ = map.advise(advice);
    }
    #[cfg(not(unix))]
    let _ = (map, access);
}

/// Drops the pages of bytes `range` of the read-only file mapping `map` from
/// this process's resident set: they stay in the page cache and come back on
/// the next access. Readers that stream through a large file call this behind
/// them, so that resident memory does not grow with the file.
pub fn release(map: &memmap2::Mmap, range: std::ops::Range<usize>) {
    #[cfg(unix)]
    {
        let end = range.end.min(map.len());
        if range.start < end {
            // SAFETY: `memmap2::Mmap` is a read-only mapping of a file that is
            // not modified while mapped (memmap2 maps files shared); MADV_DONTNEED
            // only drops the pages from this process's page tables, and a later
            // access reads the same bytes back from the page cache or the file.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, range.start, end - range.start)
            };
        }
    }
    #[cfg(not(unix))]
    let _ = (map, range);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_read_back_the_same_bytes() {
        let dir = std::env::temp_dir().join(format!("sparky-memhint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data");
        let bytes: Vec<u8> = (0..3 << 20).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: the file is ours and not modified while mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        advise(&map, Access::Sequential);
        assert_eq!(&map[..], &bytes[..]);
        release(&map, 4096..(2 << 20));
        release(&map, 0..usize::MAX); // clamped to the mapping
        advise(&map, Access::Normal);
        assert_eq!(&map[..], &bytes[..], "released pages come back unchanged");
        drop(map);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
