// Q5_0 weights (22-byte blocks: f16 d, 32 high bits `qh`, 16 bytes of nibbles; value =
// d * (q - 16) with q = nibble | high bit << 4) times Q8_0 activations. Nibbles as Q4_0:
// thread `lane` takes bytes 4 lane..4 lane + 3, elements 4 lane.. (low) and 16 + 4 lane..
// (high); qh's bit i is element i's.

fn row_partials(group: u32, vector: u32, lid: u32) -> vec4<f32> {
    let n_blocks = params.n_cols / 32u;
    let lane = lid & 3u;
    var acc = vec4<f32>(0.0);
    for (var b = lid >> 2u; b < n_blocks; b += WG / 4u) {
        let a_block = (vector * params.n_cols + b * 32u) / 4u;
        let a_low = act_q[a_block + lane];
        let a_high = act_q[a_block + 4u + lane];
        let a_sum = dot4I8Packed(ONES, a_low) + dot4I8Packed(ONES, a_high);
        let d_act = act_s[vector * n_blocks + b];
        for (var r = 0u; r < ROWS; r++) {
            let at = group_row(group, r) * params.row_bytes + b * 22u;
            let qh = load_u32_at(at + 2u);
            let q = load_u32_at(at + 6u + 4u * lane);
            let low = (q & LOW_NIBBLES) | fifth_bits(qh >> (4u * lane));
            let high = ((q >> 4u) & LOW_NIBBLES) | fifth_bits(qh >> (16u + 4u * lane));
            let sum = dot4I8Packed(low, a_low) + dot4I8Packed(high, a_high) - 16 * a_sum;
            acc[r] += load_f16_at(at) * d_act * f32(sum);
        }
    }
    return acc;
}
