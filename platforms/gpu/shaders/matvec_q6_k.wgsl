// Q6_K weights (210-byte super-blocks: 128 bytes of low nibbles `ql`, 64 bytes of high bit
// pairs `qh`, 16 int8 scales of 16 elements, f16 d; value = d * sc * (q - 32)). Each half n
// of 128 elements uses ql[64 n..], qh[32 n..] and scales[8 n..]: for l in 0..32, ql[l] low,
// ql[l + 32] low, ql[l] high, ql[l + 32] high are elements l, l + 32, l + 64, l + 96, with
// qh[l]'s bit pairs 0, 1, 2, 3 on top. Thread `lane` = 8 n + l0 / 4 takes l = l0..l0 + 3.
fn row_partials(group: u32, vector: u32, lid: u32) -> vec4<f32> {
    let n_supers = params.n_cols / 256u;
    let lane = lid & 15u;
    let half = lane >> 3u;
    let l0 = (lane & 7u) * 4u;
    let sub = l0 / 16u;
    var acc = vec4<f32>(0.0);
    for (var sb = lid >> 4u; sb < n_supers; sb += WG / 16u) {
        let a_word = (vector * params.n_cols + sb * 256u + 128u * half + l0) / 4u;
        let a = vec4<u32>(act_q[a_word], act_q[a_word + 8u], act_q[a_word + 16u], act_q[a_word + 24u]);
        let a_sum = vec4<i32>(dot4I8Packed(ONES, a.x), dot4I8Packed(ONES, a.y), dot4I8Packed(ONES, a.z), dot4I8Packed(ONES, a.w));
        let d_act = act_s[17u * (vector * n_supers + sb)];
        for (var r = 0u; r < ROWS; r++) {
            let at = group_row(group, r) * params.row_bytes + sb * 210u;
            let ql_a = load_u32_at(at + 64u * half + l0);
            let ql_b = load_u32_at(at + 64u * half + 32u + l0);
            let qh = load_u32_at(at + 128u + 32u * half + l0);
            let sc_low = load_u32_at(at + 192u + 8u * half + sub);
            let sc_high = load_u32_at(at + 196u + 8u * half + sub);
            let q = vec4<u32>(
                (ql_a & LOW_NIBBLES) | ((qh & 0x03030303u) << 4u),
                (ql_b & LOW_NIBBLES) | (((qh >> 2u) & 0x03030303u) << 4u),
                ((ql_a >> 4u) & LOW_NIBBLES) | (((qh >> 4u) & 0x03030303u) << 4u),
                ((ql_b >> 4u) & LOW_NIBBLES) | (((qh >> 6u) & 0x03030303u) << 4u),
            );
            let dots = vec4<i32>(dot4I8Packed(q.x, a.x), dot4I8Packed(q.y, a.y), dot4I8Packed(q.z, a.z), dot4I8Packed(q.w, a.w)) - 32 * a_sum;
            let sc = vec4<i32>(
                sign_extend_byte(sc_low),
                sign_extend_byte(sc_low >> 16u),
                sign_extend_byte(sc_high),
                sign_extend_byte(sc_high >> 16u),
            );
            acc[r] += d_act * load_f16_at(at + 208u) * f32(dot(sc, dots));
        }
    }
    return acc;
}
