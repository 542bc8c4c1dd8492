//! TFRecord's masked CRC32C.

/// The constant TensorFlow adds when it masks a CRC.
pub const MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a CRC32C the way TFRecord stores it: rotate right by 15 bits, then add
/// [`MASK_DELTA`] (wrapping).
#[inline]
#[must_use]
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverts [`mask`].
#[inline]
#[must_use]
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// The masked CRC32C (Castagnoli) of `data`, as stored in a TFRecord header or
/// footer.
#[inline]
#[must_use]
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        // CRC32C("123456789") is the standard check value 0xE3069283.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // The mask formula from the TFRecord format description, spelled out.
        let crc = 0xE306_9283u32;
        #[allow(clippy::manual_rotate)]
        let by_formula = ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8);
        assert_eq!(mask(crc), by_formula);
        // Header of an empty record: the masked CRC of eight zero bytes.
        assert_eq!(masked_crc32c(&0u64.to_le_bytes()), mask(crc32c::crc32c(&[0; 8])));
    }

    proptest! {
        #[test]
        fn unmask_inverts_mask(crc: u32) {
            prop_assert_eq!(unmask(mask(crc)), crc);
        }
    }
}
