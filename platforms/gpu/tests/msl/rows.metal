// language: metal2.3
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
};

struct RowParams {
    uint n_rows;
    uint row_len;
    uint groups_x;
    float eps;
    uint head_dim;
    uint n_rot;
    uint neox;
    uint pad;
};
typedef float type_2[1];
struct type_3 {
    float inner[64];
};

uint element(
    metal::uint3 id_4,
    constant RowParams& rp
) {
    uint _e5 = rp.groups_x;
    return id_4.x + ((id_4.y * _e5) * 64u);
}

struct rms_normInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void rms_norm(
  metal::uint3 group [[threadgroup_position_in_grid]]
, uint lid [[thread_index_in_threadgroup]]
, device type_2& x [[user(fake0)]]
, device type_2 const& y [[user(fake0)]]
, constant RowParams& rp [[user(fake0)]]
, threadgroup type_3& partial
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    float sum = 0.0;
    uint i = {};
    uint stride = 32u;
    uint i_1 = {};
    uint _e6 = rp.groups_x;
    uint row = group.x + (group.y * _e6);
    uint _e11 = rp.n_rows;
    uint _e17 = rp.row_len;
    uint base = metal::min(row, _e11 - 1u) * _e17;
    i = lid;
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e40 = i;
            i = _e40 + 64u;
        }
        loop_init = false;
        uint _e22 = i;
        uint _e25 = rp.row_len;
        if (_e22 < _e25) {
        } else {
            break;
        }
        {
            float _e27 = sum;
            uint _e29 = i;
            float _e32 = x[base + _e29];
            uint _e34 = i;
            float _e37 = x[base + _e34];
            sum = _e27 + (_e32 * _e37);
        }
    }
    float _e45 = sum;
    partial.inner[lid] = _e45;
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e62 = stride;
            stride = _e62 >> 1u;
        }
        loop_init_1 = false;
        uint _e48 = stride;
        if (_e48 > 0u) {
        } else {
            break;
        }
        {
            uint _e51 = stride;
            if (lid < _e51) {
                float _e55 = partial.inner[lid];
                uint _e57 = stride;
                float _e60 = partial.inner[lid + _e57];
                partial.inner[lid] = _e55 + _e60;
            }
            metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
        }
    }
    float _e67 = partial.inner[0];
    uint _e70 = rp.row_len;
    float _e75 = rp.eps;
    float scale = 1.0 / metal::sqrt((_e67 / static_cast<float>(_e70)) + _e75);
    uint _e82 = rp.n_rows;
    if (row < _e82) {
        i_1 = lid;
        uint2 loop_bound_2 = uint2(4294967295u);
        bool loop_init_2 = true;
        while(true) {
            if (metal::all(loop_bound_2 == uint2(0u))) { break; }
            loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
            if (!loop_init_2) {
                uint _e105 = i_1;
                i_1 = _e105 + 64u;
            }
            loop_init_2 = false;
            uint _e85 = i_1;
            uint _e88 = rp.row_len;
            if (_e85 < _e88) {
            } else {
                break;
            }
            {
                uint _e91 = i_1;
                uint _e95 = i_1;
                float _e98 = x[base + _e95];
                uint _e101 = i_1;
                float _e103 = y[_e101];
                x[base + _e91] = (_e98 * scale) * _e103;
            }
        }
        return;
    } else {
        return;
    }
}

uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

uint naga_mod(uint lhs, uint rhs) {
    return lhs % metal::select(rhs, 1u, rhs == 0u);
}


struct ropeInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void rope(
  metal::uint3 id [[thread_position_in_grid]]
, device type_2& x [[user(fake0)]]
, device type_2 const& y [[user(fake0)]]
, constant RowParams& rp [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint _e3 = rp.n_rot;
    uint half_ = naga_div(_e3, 2u);
    uint _e8 = rp.row_len;
    uint _e11 = rp.head_dim;
    uint heads = naga_div(_e8, _e11);
    uint _e13 = element(id, rp);
    uint _e16 = rp.n_rows;
    if (_e13 >= ((_e16 * heads) * half_)) {
        return;
    }
    uint pair = naga_mod(_e13, half_);
    uint head = naga_mod(naga_div(_e13, half_), heads);
    uint row_1 = naga_div(_e13, half_ * heads);
    uint _e27 = rp.row_len;
    uint _e31 = rp.head_dim;
    uint at = (row_1 * _e27) + (head * _e31);
    uint _e38 = rp.neox;
    uint a = at + ((_e38 != 0u) ? pair : (2u * pair));
    uint _e50 = rp.neox;
    uint b = at + ((_e50 != 0u) ? (pair + half_) : ((2u * pair) + 1u));
    float _e61 = y[2u * ((row_1 * half_) + pair)];
    float _e70 = y[(2u * ((row_1 * half_) + pair)) + 1u];
    metal::float2 cos_sin = metal::float2(_e61, _e70);
    float x0_ = x[a];
    float x1_ = x[b];
    x[a] = (x0_ * cos_sin.x) - (x1_ * cos_sin.y);
    x[b] = (x0_ * cos_sin.y) + (x1_ * cos_sin.x);
    return;
}


struct swigluInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void swiglu(
  metal::uint3 id_1 [[thread_position_in_grid]]
, device type_2& x [[user(fake0)]]
, device type_2 const& y [[user(fake0)]]
, constant RowParams& rp [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint _e1 = element(id_1, rp);
    uint _e4 = rp.n_rows;
    uint _e7 = rp.row_len;
    if (_e1 < (_e4 * _e7)) {
        float g = x[_e1];
        float _e22 = y[_e1];
        x[_e1] = (g / (1.0 + metal::exp(-(g)))) * _e22;
        return;
    } else {
        return;
    }
}


struct add_rowsInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void add_rows(
  metal::uint3 id_2 [[thread_position_in_grid]]
, device type_2& x [[user(fake0)]]
, device type_2 const& y [[user(fake0)]]
, constant RowParams& rp [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint _e1 = element(id_2, rp);
    uint _e4 = rp.n_rows;
    uint _e7 = rp.row_len;
    if (_e1 < (_e4 * _e7)) {
        float _e12 = x[_e1];
        uint _e16 = rp.row_len;
        float _e19 = y[naga_mod(_e1, _e16)];
        x[_e1] = _e12 + _e19;
        return;
    } else {
        return;
    }
}


struct addInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void add(
  metal::uint3 id_3 [[thread_position_in_grid]]
, device type_2& x [[user(fake0)]]
, device type_2 const& y [[user(fake0)]]
, constant RowParams& rp [[user(fake0)]]
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint _e1 = element(id_3, rp);
    uint _e4 = rp.n_rows;
    uint _e7 = rp.row_len;
    if (_e1 < (_e4 * _e7)) {
        float _e12 = x[_e1];
        float _e15 = y[_e1];
        x[_e1] = _e12 + _e15;
        return;
    } else {
        return;
    }
}
