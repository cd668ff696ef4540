//! Parameters and gradients travel as little-endian f32 bytes. These are the only
//! conversions: written as whole-slice loops so they compile to plain copies on
//! little-endian machines, with no per-value allocation.

use bytes::Bytes;

#[cfg(target_endian = "little")]
pub fn to_le_bytes(values: &[f32]) -> Bytes {
    // The in-memory floats already are the wire format: one copy, no zero-fill.
    Bytes::copy_from_slice(bytemuck::cast_slice(values))
}

#[cfg(not(target_endian = "little"))]
pub fn to_le_bytes(values: &[f32]) -> Bytes {
    let mut out = vec![0u8; values.len() * 4];
    for (dst, x) in out.chunks_exact_mut(4).zip(values) {
        dst.copy_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

/// The floats in `bytes`, or `None` when it is not a whole number of them.
pub fn le_floats(bytes: &[u8]) -> Option<impl ExactSizeIterator<Item = f32> + '_> {
    bytes.len().is_multiple_of(4).then(|| {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    })
}

/// Writes `bytes` into `out`; false (and `out` untouched) when the lengths disagree.
pub fn read_le_into(bytes: &[u8], out: &mut [f32]) -> bool {
    if bytes.len() != out.len() * 4 {
        return false;
    }
    for (dst, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *dst = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_ragged_bytes() {
        let v = [1.5f32, -0.0, f32::MAX, 3.25e-8];
        let b = to_le_bytes(&v);
        assert_eq!(b.len(), 16);
        assert_eq!(le_floats(&b).unwrap().collect::<Vec<_>>(), v);
        let mut out = [0.0f32; 4];
        assert!(read_le_into(&b, &mut out));
        assert_eq!(out, v);
        assert!(le_floats(&b[..15]).is_none());
        let mut short = [9.0f32; 3];
        assert!(!read_le_into(&b, &mut short));
        assert_eq!(short, [9.0; 3]);
    }
}
