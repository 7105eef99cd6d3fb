// Q8_0 weights (34-byte blocks: f16 d, 32 int8 quants) times Q8_0 activations.
// Four threads share a block, eight elements each.
fn row_partials(group: u32, vector: u32, lid: u32) -> vec4<f32> {
    let n_blocks = params.n_cols / 32u;
    let lane = lid & 3u;
    var acc = vec4<f32>(0.0);
    for (var b = lid >> 2u; b < n_blocks; b += WG / 4u) {
        let a_word = (vector * params.n_cols + b * 32u) / 4u + 2u * lane;
        let a0 = act_q[a_word];
        let a1 = act_q[a_word + 1u];
        let d_act = act_s[vector * n_blocks + b];
        for (var r = 0u; r < ROWS; r++) {
            let at = group_row(group, r) * params.row_bytes + b * 34u;
            let quants = at + 2u + 8u * lane;
            let sum = dot4I8Packed(load_u32_at(quants), a0) + dot4I8Packed(load_u32_at(quants + 4u), a1);
            acc[r] += load_f16_at(at) * d_act * f32(sum);
        }
    }
    return acc;
}
