// Activations quantized on the GPU by quantize.wgsl: int8 quants packed four to a word
// (element i of vector v is byte i % 4 of word (v * n_cols + i) / 4), and per block the
// f32 scale data (Q8_0: d; Q8_1: d, s; Q8_K: d, then the 16 sums of 16 quants).
@group(0) @binding(1) var<storage, read> act_q: array<u32>;
@group(0) @binding(2) var<storage, read> act_s: array<f32>;

// Every byte 1: a dot with it sums a word's four int8 quants.
const ONES: u32 = 0x01010101u;
const LOW_NIBBLES: u32 = 0x0f0f0f0fu;
