// Q5_1 weights (24-byte blocks: f16 d, f16 m, 32 high bits `qh`, 16 bytes of nibbles; value =
// d * q + m with q = nibble | high bit << 4) times Q8_1 activations. Layout as Q5_0; the
// block's `m * s` term is added once, by lane 0. Blocks are word-aligned.

fn row_partials(group: u32, vector: u32, lid: u32) -> vec4<f32> {
    let n_blocks = params.n_cols / 32u;
    let lane = lid & 3u;
    var acc = vec4<f32>(0.0);
    for (var b = lid >> 2u; b < n_blocks; b += WG / 4u) {
        let a_block = (vector * params.n_cols + b * 32u) / 4u;
        let a_low = act_q[a_block + lane];
        let a_high = act_q[a_block + 4u + lane];
        let d_act = act_s[2u * (vector * n_blocks + b)];
        let s_act = select(0.0, act_s[2u * (vector * n_blocks + b) + 1u], lane == 0u);
        for (var r = 0u; r < ROWS; r++) {
            let word = (group_row(group, r) * params.row_bytes + b * 24u) / 4u;
            let scales = weights[word];
            let qh = weights[word + 1u];
            let q = weights[word + 2u + lane];
            let low = (q & LOW_NIBBLES) | fifth_bits(qh >> (4u * lane));
            let high = ((q >> 4u) & LOW_NIBBLES) | fifth_bits(qh >> (16u + 4u * lane));
            let sum = dot4I8Packed(low, a_low) + dot4I8Packed(high, a_high);
            acc[r] += f16_bits_to_f32(scales) * d_act * f32(sum) + f16_bits_to_f32(scales >> 16u) * s_act;
        }
    }
    return acc;
}
