// Shared by every matrix-vector kernel: y[v][first_row + r] = W[r] · x[v] for the rows of one
// weight slice. A workgroup of WG threads computes ROWS output rows of one vector
// (workgroup_id.x = row group, workgroup_id.y = vector); each kernel file supplies
// `row_partials`, this thread's share of the ROWS sums, and a reduction file the entry point.

const WG: u32 = 64u;
const ROWS: u32 = 4u;

struct Params {
    // Elements per row (a whole number of the type's blocks).
    n_cols: u32,
    // Rows in this slice.
    n_rows: u32,
    // Bytes per row of GGUF blocks.
    row_bytes: u32,
    // The slice's first row in the whole matrix.
    first_row: u32,
    // Rows of the whole matrix: the stride between output vectors.
    out_stride: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// The slice's rows, as the GGUF file stores them, padded to a whole number of words.
@group(0) @binding(0) var<storage, read> weights: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// The 4 bytes at byte offset `at` of the weights, little-endian, at any alignment.
fn load_u32_at(at: u32) -> u32 {
    let word = at >> 2u;
    let shift = (at & 3u) * 8u;
    let low = weights[word];
    if (shift == 0u) {
        return low;
    }
    return (low >> shift) | (weights[word + 1u] << (32u - shift));
}

// The f16 at the even byte offset `at` of the weights, as f32.
fn load_f16_at(at: u32) -> f32 {
    return f16_bits_to_f32(weights[at >> 2u] >> ((at & 2u) * 8u));
}

// Bits 0..3 of `bits` moved to bit 4 of bytes 0..3: Q5 formats' fifth bits of four quants.
fn fifth_bits(bits: u32) -> u32 {
    return ((bits & 1u) | ((bits & 2u) << 7u) | ((bits & 4u) << 14u) | ((bits & 8u) << 21u)) << 4u;
}

// Row `r` of this workgroup's group, clamped into the slice: the rows past the end of the
// last group compute a copy of the last row, which `write_rows` then drops.
fn group_row(group: u32, r: u32) -> u32 {
    return min(group * ROWS + r, params.n_rows - 1u);
}

fn write_rows(group: u32, vector: u32, sums: vec4<f32>) {
    for (var r = 0u; r < ROWS; r++) {
        let row = group * ROWS + r;
        if (row < params.n_rows) {
            out[vector * params.out_stride + params.first_row + row] = sums[r];
        }
    }
}
