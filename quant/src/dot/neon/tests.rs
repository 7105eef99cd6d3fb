//! Unit tests for what the integration tests cannot reach: the 2×2 i8mm kernels.

use super::*;
use crate::rng::Rng;

/// `len` random bytes (bits 32..40 of each draw).
fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| (rng.next_u64() >> 32) as u8).collect()
}

/// Random blocks of `ty` with finite f16 scales in ±[2^-8, 2^4) at byte 0.
fn blocks(rng: &mut Rng, ty: GgmlType, nb: usize) -> Vec<u8> {
    let bb = ty.block_bytes();
    let mut v = bytes(rng, nb * bb);
    for b in 0..nb {
        let e = 7 + (rng.next_u64() % 12) as u16; // biased exponent 7..19
        let bits = ((rng.next_u64() & 1) as u16) << 15 | e << 10 | (rng.next_u64() as u16 & 0x3ff);
        v[b * bb..b * bb + 2].copy_from_slice(&bits.to_le_bytes());
    }
    v
}

#[test]
fn i8mm_2x2_equals_dotprod_bit_for_bit() {
    if !CpuLevel::I8mm.is_supported() {
        eprintln!("i8mm not supported on this CPU: skipping the 2x2 smmla kernels");
        assert!(i8mm::kernel_2x2(GgmlType::Q8_0).is_none());
        return;
    }
    let mut rng = Rng::xorshift64star(0x9e37_79b9_7f4a_7c15);
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0] {
        let k2 = i8mm::kernel_2x2(ty).expect("2x2 kernel");
        let k1 = kernel(CpuLevel::Dotprod, ty).expect("dotprod kernel");
        for nb in [1usize, 2, 3, 8, 33] {
            let n = nb * 32;
            let w = [blocks(&mut rng, ty, nb), blocks(&mut rng, ty, nb)];
            let a = [
                blocks(&mut rng, GgmlType::Q8_0, nb),
                blocks(&mut rng, GgmlType::Q8_0, nb),
            ];
            let got = k2(n, [&w[0], &w[1]], [&a[0], &a[1]]);
            for (r, row) in got.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    let want = k1(n, &w[r], &a[c]);
                    assert_eq!(
                        v.to_bits(),
                        want.to_bits(),
                        "{ty} nb={nb} [{r}][{c}]: {v} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn neon_and_dotprod_kernels_agree_bit_for_bit() {
    // The two int8 instantiations compute the same integers and then the same float ops.
    if !CpuLevel::Dotprod.is_supported() {
        eprintln!("dotprod not supported on this CPU: skipping neon-vs-dotprod");
        return;
    }
    let mut rng = Rng::xorshift64star(42);
    use GgmlType::*;
    for ty in [
        Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Iq4Nl, Q2K, Q3K, Q4K, Q5K, Q6K, Iq4Xs,
    ] {
        let at = activation_of(ty).unwrap();
        for nb in [1usize, 2, 5] {
            let n = nb * ty.block_len();
            let w = bytes(&mut rng, nb * ty.block_bytes());
            let mut a = bytes(&mut rng, n / at.block_len() * at.block_bytes());
            if at == Q8K {
                // Keep the f32 scales finite and moderate.
                for b in 0..n / 256 {
                    a[b * 292..b * 292 + 4].copy_from_slice(&0.5f32.to_le_bytes());
                }
            }
            let x = kernel(CpuLevel::Neon, ty).unwrap()(n, &w, &a);
            let y = kernel(CpuLevel::Dotprod, ty).unwrap()(n, &w, &a);
            assert!(
                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
                "{ty} nb={nb}: neon {x} vs dotprod {y}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "not a multiple")]
fn partial_blocks_are_refused() {
    let f = kernel(CpuLevel::Neon, GgmlType::Q8_0).unwrap();
    f(33, &[0; 68], &[0; 68]);
}

#[test]
#[should_panic(expected = "bytes <")]
fn short_slices_are_refused() {
    let f = kernel(CpuLevel::Neon, GgmlType::Q4K).unwrap();
    f(256, &[0; 143], &[0; 292]);
}

#[test]
fn finite_rows_give_finite_results() {
    // Finite scales near f16's extremes must not overflow into Inf or NaN.
    let mut rng = Rng::xorshift64star(7);
    use GgmlType::*;
    let levels: Vec<CpuLevel> = [CpuLevel::Neon, CpuLevel::Dotprod]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    for ty in [
        Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Iq4Nl, Q2K, Q3K, Q4K, Q5K, Q6K, Iq4Xs, F16,
    ] {
        let at = activation_of(ty).unwrap();
        let nb = 3;
        let n = nb * ty.block_len();
        let mut w = blocks(&mut rng, ty, nb);
        let mut a = blocks(&mut rng, at, n / at.block_len());
        if ty == F16 {
            // Finite f16 elements: clear the top exponent bit of every value.
            for x in w.chunks_exact_mut(2).chain(a.chunks_exact_mut(2)) {
                x[1] &= 0xbf;
            }
        }
        for (k, blk) in w.chunks_exact_mut(ty.block_bytes()).enumerate() {
            // Finite weight scales at their real offsets (`blocks` set byte 0..2).
            let one = half::f16::from_f32(0.5 + k as f32).to_le_bytes();
            let offs: &[usize] = match ty {
                Q2K => &[80, 82],
                Q3K => &[108],
                Q6K => &[208],
                Q4_1 | Q5_1 | Q4K | Q5K => &[0, 2],
                F16 => &[],
                _ => &[0],
            };
            for &o in offs {
                blk[o..o + 2].copy_from_slice(&one);
            }
        }
        if at == Q8K {
            for b in a.chunks_exact_mut(292) {
                b[0..4].copy_from_slice(&0.25f32.to_le_bytes());
            }
        }
        if at == Q8_1 {
            for b in a.chunks_exact_mut(36) {
                b[2..4].copy_from_slice(&half::f16::from_f32(3.0).to_le_bytes());
            }
        }
        for &l in &levels {
            let r = kernel(l, ty).unwrap()(n, &w, &a);
            assert!(r.is_finite(), "{ty} {l}: {r}");
        }
    }
    // And a NaN scale gives NaN.
    let w = blocks(&mut rng, Q8_0, 1);
    let mut a = blocks(&mut rng, Q8_0, 1);
    a[0..2].copy_from_slice(&half::f16::NAN.to_le_bytes());
    assert!(kernel(CpuLevel::Neon, Q8_0).unwrap()(32, &w, &a).is_nan());
}

#[test]
fn f16_conversion_matches_half_for_every_bit_pattern() {
    for bits in 0..=u16::MAX {
        let b = bits.to_le_bytes();
        // SAFETY: two readable bytes.
        let got = unsafe { f16_at(b.as_ptr()) };
        let want = half::f16::from_bits(bits).to_f32();
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{bits:#06x}: {got} vs {want}"
        );
    }
}
