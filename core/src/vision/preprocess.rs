//! Image → tiles of normalised pixels, as transformers' `Llama4ImageProcessorFast` does it
//! (spec §5.1), byte for byte:
//!
//! 1. The canvas: among every `rows × cols` grid of tiles with `rows·cols ≤ max_tiles`, the
//!    one that needs the least upscaling (or, when every grid shrinks the image, the least
//!    downscaling), ties to the smallest area. Scales are compared as f32, as torch does.
//! 2. The image is resized, keeping its aspect ratio, to fit the canvas (never upscaled past
//!    one tile), with torchvision's antialiased bilinear filter on 8-bit pixels: PIL's
//!    triangle filter, weights in fixed point, rows first then columns, each pass rounded to
//!    8 bits.
//! 3. Right and bottom are padded with black; pixels are scaled by 1/255 and normalised
//!    `(v − mean) / std` in bfloat16 arithmetic (transformers does it in bf16 to mimic the
//!    original); the canvas is cut into tiles row-major.
//! 4. With more than one tile, a global tile follows: the whole image resized (distorting)
//!    to one tile.

use half::bf16;

use super::image::ImageView;
use crate::error::{try_vec, Error, Result};

/// How images become tiles; [`crate::vision::VisionModel::preprocess_options`] gives a
/// model's.
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessOptions {
    /// Side of a square tile in pixels (336 for Llama 4).
    pub tile_size: usize,
    /// Most tiles of the canvas (16 for Llama 4), not counting the global tile.
    pub max_tiles: usize,
    /// Per-channel mean subtracted after scaling to 0..1.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// Largest image, in pixels (width × height as given), accepted: a bound on the work a
    /// caller can ask for.
    pub max_pixels: usize,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        Self {
            tile_size: 336,
            max_tiles: 16,
            mean: [0.5; 3],
            std: [0.5; 3],
            max_pixels: 64 << 20,
        }
    }
}

/// An image ready for the encoder: `n_tiles` tiles of `3 × tile_size × tile_size` floats
/// (channel-major, then rows), the grid's tiles row-major, then the global tile if any.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelTensor {
    /// The pixels, `[n_tiles][3][tile_size][tile_size]`.
    pub data: Vec<f32>,
    /// Side of a tile.
    pub tile_size: usize,
    /// Rows and columns of the tile grid.
    pub grid: (usize, usize),
    /// Whether a global tile follows the grid (grids of more than one tile).
    pub has_global: bool,
    /// The size `(width, height)` the image was resized to before padding.
    pub resized: (usize, usize),
}

impl PixelTensor {
    /// Tiles, global tile included.
    pub fn n_tiles(&self) -> usize {
        self.grid.0 * self.grid.1 + usize::from(self.has_global)
    }

    /// Tile `i` (`3 × tile_size²` floats).
    pub fn tile(&self, i: usize) -> &[f32] {
        let n = 3 * self.tile_size * self.tile_size;
        &self.data[i * n..(i + 1) * n]
    }

    /// A 64-bit hash of the pixels and grid: equal tensors hash equal (the embedding
    /// cache's key).
    pub fn content_hash(&self) -> u64 {
        let mut h = Fnv::new();
        for v in [
            self.tile_size,
            self.grid.0,
            self.grid.1,
            usize::from(self.has_global),
        ] {
            h.write(&(v as u64).to_le_bytes());
        }
        for chunk in self.data.chunks(1024) {
            for v in chunk {
                h.write(&v.to_bits().to_le_bytes());
            }
        }
        h.finish()
    }
}

/// FNV-1a, 64 bit.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The tile grids a canvas may have, `(rows, cols)` with `rows·cols ≤ max_tiles`, in the
/// order transformers' `find_supported_resolutions` lists them (grouped by aspect ratio in
/// order of first appearance, from `max_tiles` tiles down to one), which decides ties.
fn candidate_grids(max_tiles: usize) -> Vec<(usize, usize)> {
    let mut groups: Vec<(f64, Vec<(usize, usize)>)> = Vec::new();
    for n in (1..=max_tiles).rev() {
        for rows in (1..=n).filter(|r| n % r == 0) {
            let grid = (rows, n / rows);
            let ratio = grid.0 as f64 / grid.1 as f64;
            match groups.iter_mut().find(|(r, _)| *r == ratio) {
                Some((_, g)) => g.push(grid),
                None => groups.push((ratio, vec![grid])),
            }
        }
    }
    groups.into_iter().flat_map(|(_, g)| g).collect()
}

/// The tile grid `(rows, cols)` of the canvas chosen for a `width × height` image with tiles
/// of `tile` pixels: the least upscaling, else the least downscaling, then the least area
/// (transformers' `get_best_fit`, scales compared in f32 as torch computes them).
pub fn best_grid(width: usize, height: usize, tile: usize, max_tiles: usize) -> (usize, usize) {
    let candidates = candidate_grids(max_tiles.max(1));
    let scale = |(rows, cols): (usize, usize)| {
        let sh = (rows * tile) as f32 / height as f32;
        let sw = (cols * tile) as f32 / width as f32;
        if sh > sw {
            sw
        } else {
            sh
        }
    };
    let scales: Vec<f32> = candidates.iter().map(|&g| scale(g)).collect();
    let chosen = match scales
        .iter()
        .copied()
        .filter(|&s| s >= 1.0)
        .reduce(f32::min)
    {
        Some(up) => up,
        None => scales.iter().copied().fold(f32::MIN, f32::max),
    };
    let mut best: Option<(usize, (usize, usize))> = None;
    for (&g, &s) in candidates.iter().zip(&scales) {
        if s == chosen && best.is_none_or(|(area, _)| g.0 * g.1 < area) {
            best = Some((g.0 * g.1, g));
        }
    }
    best.map_or((1, 1), |(_, g)| g)
}

/// How an image of a given size is cut: known before touching a pixel, e.g. to budget the
/// tokens an image will take (`tiles × tokens_per_tile` plus separators).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Rows and columns of the tile grid.
    pub grid: (usize, usize),
    /// Size `(width, height)` the image is resized to before padding to the grid.
    pub resized: (usize, usize),
    /// Whether a global tile follows the grid.
    pub has_global: bool,
}

/// The [`Plan`] for a `width × height` image (both at least 1).
pub fn plan(width: usize, height: usize, opts: &PreprocessOptions) -> Plan {
    let (width, height, tile) = (width.max(1), height.max(1), opts.tile_size.max(1));
    let grid = best_grid(width, height, tile, opts.max_tiles);
    let (canvas_w, canvas_h) = (grid.1 * tile, grid.0 * tile);
    // Never upscale past one tile (Python's min keeps the first of equals: the image side).
    let box_side = |side: usize, canvas: usize| {
        let side = side.max(tile);
        if canvas < side {
            (canvas, true)
        } else {
            (side, false)
        }
    };
    let resized = fit_without_distortion(
        (width, height),
        box_side(width, canvas_w),
        box_side(height, canvas_h),
    );
    Plan {
        grid,
        resized,
        has_global: grid.0 * grid.1 > 1,
    }
}

/// Preprocesses `image` into tiles as transformers does for Llama 4.
///
/// # Errors
/// [`crate::ErrorKind::InvalidImage`] when the image exceeds `opts.max_pixels`,
/// [`crate::ErrorKind::InvalidArgument`] when the options are degenerate; [`crate::ErrorKind::OutOfMemory`] when the tiles cannot be
/// allocated.
pub fn preprocess(image: &ImageView<'_>, opts: &PreprocessOptions) -> Result<PixelTensor> {
    let (width, height) = image.size();
    let tile = opts.tile_size;
    if tile == 0 || opts.max_tiles == 0 {
        return Err(Error::InvalidArgument(
            "preprocessing needs a tile size and at least one tile".into(),
        ));
    }
    if width.saturating_mul(height) > opts.max_pixels {
        return Err(Error::InvalidImage(format!(
            "image of {width}×{height} pixels exceeds the budget of {} pixels",
            opts.max_pixels
        )));
    }
    let Plan {
        grid,
        resized: (new_w, new_h),
        has_global,
    } = plan(width, height, opts);
    let n_tiles = grid.0 * grid.1 + usize::from(has_global);
    let tile_len = 3 * tile * tile;
    let mut data = try_vec(n_tiles * tile_len, 0.0f32, "image tiles")?;
    let lut = normalise_table(opts);

    let resized = resize_rgb(image, new_w, new_h)?;
    // Pad (black) and cut into tiles: canvas pixel (x, y) goes to tile (y / tile, x / tile).
    for (i, out) in data
        .chunks_exact_mut(tile_len)
        .take(grid.0 * grid.1)
        .enumerate()
    {
        let (tr, tc) = (i / grid.1, i % grid.1);
        for c in 0..3 {
            for y in 0..tile {
                let cy = tr * tile + y;
                let row = &mut out[(c * tile + y) * tile..][..tile];
                for (x, v) in row.iter_mut().enumerate() {
                    let cx = tc * tile + x;
                    let byte = if cy < new_h && cx < new_w {
                        resized[(cy * new_w + cx) * 3 + c]
                    } else {
                        0
                    };
                    *v = lut[c][usize::from(byte)];
                }
            }
        }
    }
    if has_global {
        let global = resize_rgb(image, tile, tile)?;
        let out = &mut data[(n_tiles - 1) * tile_len..];
        for c in 0..3 {
            for (p, v) in out[c * tile * tile..][..tile * tile].iter_mut().enumerate() {
                *v = lut[c][usize::from(global[p * 3 + c])];
            }
        }
    }
    Ok(PixelTensor {
        data,
        tile_size: tile,
        grid,
        has_global,
        resized: (new_w, new_h),
    })
}

/// The largest size with the image's aspect ratio inside `box_w × box_h` (transformers'
/// `get_max_res_without_distortion`, at least 1×1), in transformers' arithmetic: a box side
/// that came from the canvas is a torch integer, so its scale, the comparison and the product
/// are float32; a side that is a plain integer gives float64. Some sizes round differently
/// either way (71×1704 at 84-pixel tiles), so the distinction matters.
fn fit_without_distortion(
    (w, h): (usize, usize),
    (box_w, w_from_canvas): (usize, bool),
    (box_h, h_from_canvas): (usize, bool),
) -> (usize, usize) {
    let scale = |side: usize, of: usize, f32_math: bool| {
        if f32_math {
            f64::from(side as f32 / of as f32)
        } else {
            side as f64 / of as f64
        }
    };
    let scale_w = scale(box_w, w, w_from_canvas);
    let scale_h = scale(box_h, h, h_from_canvas);
    let w_narrower = if w_from_canvas || h_from_canvas {
        (scale_w as f32) < (scale_h as f32)
    } else {
        scale_w < scale_h
    };
    let floor_times = |n: usize, s: f64, f32_math: bool| {
        if f32_math {
            (n as f32 * s as f32).floor() as usize
        } else {
            (n as f64 * s).floor() as usize
        }
    };
    let (nw, nh) = if w_narrower {
        (box_w, floor_times(h, scale_w, w_from_canvas).min(box_h))
    } else {
        (floor_times(w, scale_h, h_from_canvas).min(box_w), box_h)
    };
    (nw.max(1), nh.max(1))
}

/// For each channel, the normalised value of each byte: `bf16(bf16(bf16(b) · (1/255)) − mean)`
/// divided by `std` in bf16, as transformers computes it.
fn normalise_table(opts: &PreprocessOptions) -> [[f32; 256]; 3] {
    let mut lut = [[0.0f32; 256]; 3];
    let rescale = (1.0f64 / 255.0) as f32;
    for (c, table) in lut.iter_mut().enumerate() {
        let mean = bf16::from_f32(opts.mean[c]).to_f32();
        let std = bf16::from_f32(opts.std[c]).to_f32();
        for (b, v) in table.iter_mut().enumerate() {
            let scaled = bf16::from_f32(b as f32 * rescale).to_f32();
            let centred = bf16::from_f32(scaled - mean).to_f32();
            *v = bf16::from_f32(centred / std).to_f32();
        }
    }
    lut
}

/// Fixed-point filter taps of one resampling pass (torch's `_compute_indices_int16_weights_aa`
/// for the bilinear/triangle filter with antialiasing).
struct Taps {
    /// First input index of each output.
    start: Vec<usize>,
    /// Number of inputs of each output.
    len: Vec<usize>,
    /// `max_taps` weights per output.
    weights: Vec<i32>,
    max_taps: usize,
    precision: u32,
}

impl Taps {
    fn new(n_in: usize, n_out: usize) -> Self {
        let scale = n_in as f64 / n_out as f64;
        let support = if scale >= 1.0 { scale } else { 1.0 };
        let max_taps = (support.ceil() as usize) * 2 + 1;
        let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
        let mut start = Vec::with_capacity(n_out);
        let mut len = Vec::with_capacity(n_out);
        let mut wf = vec![0.0f64; n_out * max_taps];
        for i in 0..n_out {
            let center = scale * (i as f64 + 0.5);
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(n_in as i64) as usize;
            let n = xmax.saturating_sub(xmin);
            let w = &mut wf[i * max_taps..][..max_taps];
            let mut total = 0.0;
            for (j, wj) in w.iter_mut().enumerate().take(n) {
                let x = ((j + xmin) as f64 - center + 0.5) * invscale;
                *wj = triangle(x);
                total += *wj;
            }
            if total != 0.0 {
                w[..n].iter_mut().for_each(|v| *v /= total);
            }
            start.push(xmin);
            len.push(n);
        }
        let w_max = wf.iter().copied().fold(wf[0], f64::max);
        let mut precision = 0u32;
        while precision < 22 {
            let next = (0.5 + w_max * f64::from(1u32 << (precision + 1))) as i32;
            if next >= 1 << 15 {
                break;
            }
            precision += 1;
        }
        let one = f64::from(1u32 << precision);
        let weights = wf
            .iter()
            .map(|&v| {
                if v < 0.0 {
                    (-0.5 + v * one) as i32
                } else {
                    (0.5 + v * one) as i32
                }
            })
            .collect();
        Taps {
            start,
            len,
            weights,
            max_taps,
            precision,
        }
    }

    /// Output `i` from inputs read by `at(index)`.
    #[inline]
    fn apply(&self, i: usize, at: impl Fn(usize) -> u8) -> u8 {
        let w = &self.weights[i * self.max_taps..][..self.len[i]];
        let mut acc: i32 = if self.precision == 0 {
            0
        } else {
            1 << (self.precision - 1)
        };
        for (j, &wj) in w.iter().enumerate() {
            acc += i32::from(at(self.start[i] + j)) * wj;
        }
        (acc >> self.precision).clamp(0, 255) as u8
    }
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// `image` (upright) resized to `new_w × new_h` RGB bytes: horizontal pass, then vertical,
/// each skipped when that side does not change (torch's uint8 antialiased bilinear).
fn resize_rgb(image: &ImageView<'_>, new_w: usize, new_h: usize) -> Result<Vec<u8>> {
    let (w, h) = image.size();
    // Horizontal: h rows of new_w pixels.
    let mut horiz = try_vec(h * new_w * 3, 0u8, "resize buffer")?;
    if new_w == w {
        for y in 0..h {
            for x in 0..w {
                horiz[(y * w + x) * 3..][..3].copy_from_slice(&image.rgb(x, y));
            }
        }
    } else {
        let taps = Taps::new(w, new_w);
        let mut row = vec![[0u8; 3]; w];
        for y in 0..h {
            for (x, px) in row.iter_mut().enumerate() {
                *px = image.rgb(x, y);
            }
            for x in 0..new_w {
                for c in 0..3 {
                    horiz[(y * new_w + x) * 3 + c] = taps.apply(x, |i| row[i][c]);
                }
            }
        }
    }
    if new_h == h {
        return Ok(horiz);
    }
    let taps = Taps::new(h, new_h);
    let mut out = try_vec(new_h * new_w * 3, 0u8, "resize buffer")?;
    let stride = new_w * 3;
    for y in 0..new_h {
        for xc in 0..stride {
            out[y * stride + xc] = taps.apply(y, |i| horiz[i * stride + xc]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_follow_the_processor() {
        // transformers' get_best_fit docstring: 300×200 with 224 tiles → 224×448.
        assert_eq!(best_grid(300, 200, 224, 16), (1, 2));
        assert_eq!(best_grid(336, 336, 336, 16), (1, 1));
        assert_eq!(best_grid(30, 30, 336, 16), (1, 1));
        assert_eq!(best_grid(4000, 100, 336, 16), (1, 12));
        assert_eq!(best_grid(8000, 100, 336, 16), (1, 16));
        // find_supported_resolutions docstring order for 5 tiles.
        assert_eq!(
            candidate_grids(5),
            [
                (1, 5),
                (5, 1),
                (1, 4),
                (2, 2),
                (1, 1),
                (4, 1),
                (1, 3),
                (3, 1),
                (1, 2),
                (2, 1)
            ]
        );
    }

    #[test]
    fn resize_identity_and_constant() {
        let data = vec![77u8; 5 * 4 * 3];
        let v = ImageView::packed(&data, 5, 4, super::super::PixelLayout::Rgb8).unwrap();
        assert_eq!(resize_rgb(&v, 5, 4).unwrap(), data);
        assert!(resize_rgb(&v, 13, 2).unwrap().iter().all(|&b| b == 77));
    }

    #[test]
    fn normalisation_spans_minus_one_to_one() {
        let lut = normalise_table(&PreprocessOptions::default());
        assert_eq!(lut[0][0], -1.0);
        assert_eq!(lut[0][255], 1.0);
    }
}
