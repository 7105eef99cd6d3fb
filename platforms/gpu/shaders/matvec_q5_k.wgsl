// Q5_K weights (176-byte super-blocks: f16 d, f16 dmin, 12 bytes of packed 6-bit scales and
// mins, 32 bytes of high bits `qh`, 128 bytes of nibbles; value = d * sc * q - dmin * m with
// q = nibble | high bit << 4). Nibbles as Q4_K: bytes 32 c .. 32 c + 31 hold sub-blocks 2 c
// (low) and 2 c + 1 (high); element l of those takes bit 2 c (resp. 2 c + 1) of qh[l].
// Thread `lane` = 4 c + p takes nibble bytes 32 c + 8 p .. + 7 and qh bytes 8 p .. + 7.

fn row_partials(group: u32, vector: u32, lid: u32) -> vec4<f32> {
    let n_supers = params.n_cols / 256u;
    let lane = lid & 15u;
    let c = lane >> 2u;
    let p = lane & 3u;
    let min_sub = lane & 7u;
    var acc = vec4<f32>(0.0);
    for (var sb = lid >> 4u; sb < n_supers; sb += WG / 16u) {
        let a_low = (vector * params.n_cols + sb * 256u) / 4u + 16u * c + 2u * p;
        let a0 = act_q[a_low];
        let a1 = act_q[a_low + 1u];
        let a2 = act_q[a_low + 8u];
        let a3 = act_q[a_low + 9u];
        let s_at = 17u * (vector * n_supers + sb);
        let d_act = act_s[s_at];
        let min_sum = select(0.0, act_s[s_at + 1u + 2u * min_sub] + act_s[s_at + 2u + 2u * min_sub], lane < 8u);
        for (var r = 0u; r < ROWS; r++) {
            let word = (group_row(group, r) * params.row_bytes + sb * 176u) / 4u;
            let d = f16_bits_to_f32(weights[word]);
            let dmin = f16_bits_to_f32(weights[word] >> 16u);
            let scales = vec3<u32>(weights[word + 1u], weights[word + 2u], weights[word + 3u]);
            let h0 = weights[word + 4u + 2u * p];
            let h1 = weights[word + 5u + 2u * p];
            let q0 = weights[word + 12u + 8u * c + 2u * p];
            let q1 = weights[word + 13u + 8u * c + 2u * p];
            let low0 = (q0 & LOW_NIBBLES) | (((h0 >> (2u * c)) & ONES) << 4u);
            let low1 = (q1 & LOW_NIBBLES) | (((h1 >> (2u * c)) & ONES) << 4u);
            let high0 = ((q0 >> 4u) & LOW_NIBBLES) | (((h0 >> (2u * c + 1u)) & ONES) << 4u);
            let high1 = ((q1 >> 4u) & LOW_NIBBLES) | (((h1 >> (2u * c + 1u)) & ONES) << 4u);
            let low = dot4I8Packed(low0, a0) + dot4I8Packed(low1, a1);
            let high = dot4I8Packed(high0, a2) + dot4I8Packed(high1, a3);
            let sum = k_scale_min(scales, 2u * c).x * low + k_scale_min(scales, 2u * c + 1u).x * high;
            let m = f32(k_scale_min(scales, min_sub).y);
            acc[r] += d_act * (d * f32(sum) - dmin * m * min_sum);
        }
    }
    return acc;
}
