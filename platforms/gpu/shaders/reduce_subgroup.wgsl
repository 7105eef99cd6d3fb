// Entry point with a subgroup reduction, then one shared-memory pass over the subgroups'
// sums. Needs the SUBGROUP feature; any subgroup size works (lavapipe: 8, GPUs: 16-128).
var<workgroup> partial: array<vec4<f32>, WG>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) n_subgroups: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sums = subgroupAdd(row_partials(group.x, group.y, lid));
    if (lane == 0u) {
        partial[subgroup] = sums;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var total = vec4<f32>(0.0);
        for (var s = 0u; s < n_subgroups; s++) {
            total += partial[s];
        }
        write_rows(group.x, group.y, total);
    }
}
