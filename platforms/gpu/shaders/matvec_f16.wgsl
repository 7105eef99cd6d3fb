// F16 weights times f32 activations, one element per thread per step.
fn row_partials(group: u32, vector: u32, lid: u32) -> vec4<f32> {
    var acc = vec4<f32>(0.0);
    for (var e = lid; e < params.n_cols; e += WG) {
        let x = act_f[vector * params.n_cols + e];
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += load_f16_at(group_row(group, r) * params.row_bytes + 2u * e) * x;
        }
    }
    return acc;
}
