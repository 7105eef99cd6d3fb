//! Test helpers: random YUV images, a scalar BT.601 reference written from the standard's
//! formulas, plane packing with padding, and an independent rotation of reference images.
#![allow(dead_code)]

use fennec_camera::YuvRange;
use fennec_core::vision::{ImageView, Rotation};

/// xorshift64*: deterministic test data without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A logical 4:2:0 image: full-size Y, `⌈w/2⌉ × ⌈h/2⌉` U and V.
pub struct Yuv {
    pub w: usize,
    pub h: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Yuv {
    pub fn cw(&self) -> usize {
        self.w.div_ceil(2)
    }
    pub fn ch(&self) -> usize {
        self.h.div_ceil(2)
    }

    /// Random samples, over 0..=255 for full range and over the legal 16..=235 (Y) and
    /// 16..=240 (U, V) for limited range (see `limited_range_footroom` for the rest).
    pub fn random(w: usize, h: usize, range: YuvRange, rng: &mut Rng) -> Self {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (ly, lc) = match range {
            YuvRange::Full => ((0, 256), (0, 256)),
            YuvRange::Limited => ((16, 220), (16, 225)),
        };
        let mut s = |(lo, n): (usize, usize)| (lo + rng.below(n)) as u8;
        Self {
            w,
            h,
            y: (0..w * h).map(|_| s(ly)).collect(),
            u: (0..cw * ch).map(|_| s(lc)).collect(),
            v: (0..cw * ch).map(|_| s(lc)).collect(),
        }
    }

    /// The reference RGB image, row-major `[r, g, b]` per pixel.
    pub fn reference(&self, range: YuvRange) -> Vec<[u8; 3]> {
        let cw = self.cw();
        let mut out = Vec::with_capacity(self.w * self.h);
        for y in 0..self.h {
            for x in 0..self.w {
                let c = (y / 2) * cw + x / 2;
                out.push(bt601(self.y[y * self.w + x], self.u[c], self.v[c], range));
            }
        }
        out
    }

    /// Plane of `rows` rows, each `row` samples `pixel_stride` apart, rows `stride` apart;
    /// gaps and padding filled with 0xA5; the buffer ends right after the last sample.
    pub fn pack(samples: &[u8], per_row: usize, stride: usize, pixel_stride: usize) -> Vec<u8> {
        let rows = samples.len() / per_row;
        let len = (rows - 1) * stride + (per_row - 1) * pixel_stride + 1;
        let mut buf = vec![0xA5; len];
        for r in 0..rows {
            for i in 0..per_row {
                buf[r * stride + i * pixel_stride] = samples[r * per_row + i];
            }
        }
        buf
    }

    /// Interleaved chroma rows (`first`, `second` alternating), rows `stride` apart, with
    /// 0xA5 padding; the buffer ends right after the last pair.
    pub fn pack_pairs(first: &[u8], second: &[u8], cw: usize, stride: usize) -> Vec<u8> {
        let ch = first.len() / cw;
        let mut buf = vec![0xA5; (ch - 1) * stride + 2 * cw];
        for r in 0..ch {
            for i in 0..cw {
                buf[r * stride + 2 * i] = first[r * cw + i];
                buf[r * stride + 2 * i + 1] = second[r * cw + i];
            }
        }
        buf
    }
}

/// BT.601 from the standard's formulas, in floating point.
/// Full range: `R = Y + 1.402 (V−128)`, `G = Y − 0.344136 (U−128) − 0.714136 (V−128)`,
/// `B = Y + 1.772 (U−128)`. Limited range first maps Y from 16..235 and U, V from 16..240
/// onto the full scale: `Y' = (Y−16)·255/219`, `C' = (C−128)·255/224`.
pub fn bt601(y: u8, u: u8, v: u8, range: YuvRange) -> [u8; 3] {
    let (y, u, v) = (f64::from(y), f64::from(u) - 128.0, f64::from(v) - 128.0);
    let (y, u, v) = match range {
        YuvRange::Full => (y, u, v),
        YuvRange::Limited => (
            (y - 16.0) * 255.0 / 219.0,
            u * 255.0 / 224.0,
            v * 255.0 / 224.0,
        ),
    };
    let c = |x: f64| x.round().clamp(0.0, 255.0) as u8;
    [
        c(y + 1.402 * v),
        c(y - 0.344136 * u - 0.714136 * v),
        c(y + 1.772 * u),
    ]
}

/// `img` (`w × h`, stored orientation) turned upright by forward mapping: each stored pixel
/// is sent to where rotating the picture clockwise puts it, then mirrored. Returns the
/// upright image and its size.
pub fn rotate(
    img: &[[u8; 3]],
    w: usize,
    h: usize,
    rot: Rotation,
    mirror: bool,
) -> (Vec<[u8; 3]>, usize, usize) {
    let (uw, uh) = if rot.swaps_axes() { (h, w) } else { (w, h) };
    let mut out = vec![[0u8; 3]; uw * uh];
    for sy in 0..h {
        for sx in 0..w {
            let (x, y) = match rot {
                Rotation::None => (sx, sy),
                Rotation::Cw90 => (h - 1 - sy, sx),
                Rotation::Cw180 => (w - 1 - sx, h - 1 - sy),
                Rotation::Cw270 => (sy, w - 1 - sx),
            };
            let x = if mirror { uw - 1 - x } else { x };
            out[y * uw + x] = img[sy * w + sx];
        }
    }
    (out, uw, uh)
}

pub const ROTATIONS: [Rotation; 4] = [
    Rotation::None,
    Rotation::Cw90,
    Rotation::Cw180,
    Rotation::Cw270,
];

/// Asserts `view` equals `expected` (`w × h`, upright) within `tol` per channel.
pub fn assert_close(
    view: &ImageView<'_>,
    expected: &[[u8; 3]],
    w: usize,
    h: usize,
    tol: u8,
    what: &str,
) {
    assert_eq!(view.size(), (w, h), "{what}: size");
    for y in 0..h {
        for x in 0..w {
            let got = view.rgb(x, y);
            let want = expected[y * w + x];
            for ch in 0..3 {
                assert!(
                    got[ch].abs_diff(want[ch]) <= tol,
                    "{what}: pixel ({x}, {y}) channel {ch}: got {got:?}, want {want:?}"
                );
            }
        }
    }
}

/// Sizes with odd and even sides, small and wider than SIMD blocks.
pub const SIZES: [(usize, usize); 10] = [
    (1, 1),
    (1, 2),
    (2, 1),
    (3, 3),
    (5, 7),
    (17, 9),
    (33, 18),
    (64, 31),
    (97, 45),
    (130, 6),
];
