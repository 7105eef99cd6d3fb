// Activations as f32, vector-major: element i of vector v is act_f[v * n_cols + i].
@group(0) @binding(1) var<storage, read> act_f: array<f32>;
