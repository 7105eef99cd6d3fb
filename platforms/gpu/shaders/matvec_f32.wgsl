// F32 weights times f32 activations, one element per thread per step.
fn row_partials(group: u32, vector: u32, lid: u32) -> vec4<f32> {
    var acc = vec4<f32>(0.0);
    for (var e = lid; e < params.n_cols; e += WG) {
        let x = act_f[vector * params.n_cols + e];
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += bitcast<f32>(weights[group_row(group, r) * params.n_cols + e]) * x;
        }
    }
    return acc;
}
