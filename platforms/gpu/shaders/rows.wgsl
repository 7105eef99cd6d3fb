// Row operations on f32 tensors, in place: RMS norm, RoPE, SwiGLU and residual add. `x` is
// the tensor changed, `y` the second operand (norm weight, RoPE table, `up`, or the addend).

struct RowParams {
    // Rows of x.
    n_rows: u32,
    // Elements per row of x.
    row_len: u32,
    // Workgroups along x of a two-dimensional elementwise dispatch.
    groups_x: u32,
    // RMS norm: epsilon.
    eps: f32,
    // RoPE: elements per head, rotated dimensions at the start of each head, and 0 for
    // adjacent pairs (llama's normal mode) or 1 for halves (NeoX).
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<uniform> rp: RowParams;

var<workgroup> partial: array<f32, 64>;

// The element a thread of a two-dimensional elementwise dispatch owns.
fn element(id: vec3<u32>) -> u32 {
    return id.x + id.y * rp.groups_x * 64u;
}

// Each row (one workgroup per row) scaled by 1 / sqrt(mean of squares + eps), then by the
// weight y (one row's worth).
@compute @workgroup_size(64)
fn rms_norm(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = group.x + group.y * rp.groups_x;
    let base = min(row, rp.n_rows - 1u) * rp.row_len;
    var sum = 0.0;
    for (var i = lid; i < rp.row_len; i += 64u) {
        sum += x[base + i] * x[base + i];
    }
    partial[lid] = sum;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(partial[0] / f32(rp.row_len) + rp.eps);
    if (row < rp.n_rows) {
        for (var i = lid; i < rp.row_len; i += 64u) {
            x[base + i] = (x[base + i] * scale) * y[i];
        }
    }
}

// Rotates one pair of one head of one row by the (cos, sin) in y: row r's pair i at
// y[2 (r n_rot / 2 + i)], computed on the CPU by core's `Rope::angles` (so the angles are
// the CPU's bits).
@compute @workgroup_size(64)
fn rope(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = rp.n_rot / 2u;
    let heads = rp.row_len / rp.head_dim;
    let index = element(id);
    if (index >= rp.n_rows * heads * half) {
        return;
    }
    let pair = index % half;
    let head = (index / half) % heads;
    let row = index / (half * heads);
    let at = row * rp.row_len + head * rp.head_dim;
    let a = at + select(2u * pair, pair, rp.neox != 0u);
    let b = at + select(2u * pair + 1u, pair + half, rp.neox != 0u);
    let cos_sin = vec2<f32>(y[2u * (row * half + pair)], y[2u * (row * half + pair) + 1u]);
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * cos_sin.x - x1 * cos_sin.y;
    x[b] = x0 * cos_sin.y + x1 * cos_sin.x;
}

// x = silu(x) * y, elementwise (the SwiGLU activation; x is the gate, y the up projection).
@compute @workgroup_size(64)
fn swiglu(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = element(id);
    if (i < rp.n_rows * rp.row_len) {
        let g = x[i];
        x[i] = g / (1.0 + exp(-g)) * y[i];
    }
}

// x += y for each row of x (y: one row), e.g. a bias.
@compute @workgroup_size(64)
fn add_rows(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = element(id);
    if (i < rp.n_rows * rp.row_len) {
        x[i] += y[i % rp.row_len];
    }
}

// x += y, elementwise.
@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = element(id);
    if (i < rp.n_rows * rp.row_len) {
        x[i] += y[i];
    }
}
