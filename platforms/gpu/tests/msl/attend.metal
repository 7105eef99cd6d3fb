// language: metal2.3
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
    uint size2;
    uint size3;
    uint size4;
    uint size5;
};

struct AttentionParams {
    uint n_rows;
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    uint n_cells;
    uint max_keys;
    float scale;
    uint pad;
};
typedef float type_2[1];
typedef uint type_3[1];
struct type_4 {
    float inner[256];
};
struct type_5 {
    float inner[64];
};
constant uint MAX_HEAD_DIM = 256u;

float f16_bits_to_f32_(
    uint h
) {
    uint sign = (h & 32768u) << 16u;
    uint exponent = (h >> 10u) & 31u;
    uint mantissa = h & 1023u;
    if (exponent == 0u) {
        float magnitude = static_cast<float>(mantissa) * 0.000000059604645;
        return (sign != 0u) ? -(magnitude) : magnitude;
    }
    if (exponent == 31u) {
        return as_type<float>((sign | 2139095040u) | (mantissa << 13u));
    }
    return as_type<float>((sign | ((exponent + 112u) << 23u)) | (mantissa << 13u));
}

uint naga_f2u32(float value) {
    return static_cast<uint>(metal::clamp(value, 0.0, 4294967000.0));
}

uint f32_to_f16_bits(
    float x
) {
    uint bits = as_type<uint>(x);
    uint sign_1 = (bits >> 16u) & 32768u;
    uint magnitude_1 = bits & 2147483647u;
    if (magnitude_1 > 2139095040u) {
        return sign_1 | 32256u;
    }
    if (magnitude_1 < 947912704u) {
        return sign_1 | naga_f2u32(metal::rint(as_type<float>(magnitude_1) * 16777216.0));
    }
    uint rounded = ((magnitude_1 + 4095u) + ((magnitude_1 >> 13u) & 1u)) & 4294959104u;
    if (rounded >= 1199570944u) {
        return sign_1 | 31744u;
    }
    return sign_1 | ((rounded - 939524096u) >> 13u);
}

float round_to_f16_(
    float x_1
) {
    uint _e1 = f32_to_f16_bits(x_1);
    float _e2 = f16_bits_to_f32_(_e1);
    return _e2;
}

float value_at(
    uint i,
    device type_3 const& values,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e5 = values[i >> 1u];
    float _e11 = f16_bits_to_f32_(_e5 >> ((i & 1u) * 16u));
    return _e11;
}

float reduce_max(
    uint lid_1,
    float v,
    threadgroup type_5& partial
) {
    uint stride = 32u;
    partial.inner[lid_1] = v;
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e22 = stride;
            stride = _e22 >> 1u;
        }
        loop_init = false;
        uint _e6 = stride;
        if (_e6 > 0u) {
        } else {
            break;
        }
        {
            uint _e9 = stride;
            if (lid_1 < _e9) {
                float _e15 = partial.inner[lid_1];
                uint _e17 = stride;
                float _e20 = partial.inner[lid_1 + _e17];
                partial.inner[lid_1] = metal::max(_e15, _e20);
            }
            metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
        }
    }
    float result = partial.inner[0];
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    return result;
}

float reduce_sum(
    uint lid_2,
    float v_1,
    threadgroup type_5& partial
) {
    uint stride_1 = 32u;
    partial.inner[lid_2] = v_1;
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e20 = stride_1;
            stride_1 = _e20 >> 1u;
        }
        loop_init_1 = false;
        uint _e6 = stride_1;
        if (_e6 > 0u) {
        } else {
            break;
        }
        {
            uint _e9 = stride_1;
            if (lid_2 < _e9) {
                float _e13 = partial.inner[lid_2];
                uint _e15 = stride_1;
                float _e18 = partial.inner[lid_2 + _e15];
                partial.inner[lid_2] = _e13 + _e18;
            }
            metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
        }
    }
    float result_1 = partial.inner[0];
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    return result_1;
}
uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

uint naga_mod(uint lhs, uint rhs) {
    return lhs % metal::select(rhs, 1u, rhs == 0u);
}


struct attendInput {
};
[[max_total_threads_per_threadgroup(64)]] kernel void attend(
  metal::uint3 group [[threadgroup_position_in_grid]]
, uint lid [[thread_index_in_threadgroup]]
, device type_2 const& q [[user(fake0)]]
, device type_3 const& keys [[user(fake0)]]
, device type_3 const& values [[user(fake0)]]
, device type_3 const& windows [[user(fake0)]]
, device type_2& scores [[user(fake0)]]
, device type_2& out [[user(fake0)]]
, constant AttentionParams& ap [[user(fake0)]]
, threadgroup type_4& query
, threadgroup type_5& partial
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    uint d = {};
    float local_max = -300000000000000000000000000000000000000.0;
    uint j = {};
    float s = {};
    uint d_1 = {};
    float local_sum = 0.0;
    uint j_1 = {};
    uint j_2 = {};
    uint d_2 = {};
    float acc = {};
    uint j_3 = {};
    uint head = group.x;
    uint row = group.y;
    uint hd = ap.head_dim;
    uint _e9 = ap.n_head;
    uint _e12 = ap.n_head_kv;
    uint kv_head = naga_div(head, naga_div(_e9, _e12));
    uint _e17 = ap.n_head_kv;
    uint kv_dim = _e17 * hd;
    uint first = windows[2u * row];
    uint _e30 = windows[(2u * row) + 1u];
    uint n_keys = (_e30 + 1u) - first;
    uint _e36 = ap.n_head;
    uint q_at = ((row * _e36) + head) * hd;
    d = lid;
    uint2 loop_bound_2 = uint2(4294967295u);
    bool loop_init_2 = true;
    while(true) {
        if (metal::all(loop_bound_2 == uint2(0u))) { break; }
        loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
        if (!loop_init_2) {
            uint _e52 = d;
            d = _e52 + 64u;
        }
        loop_init_2 = false;
        uint _e41 = d;
        if (_e41 < hd) {
        } else {
            break;
        }
        {
            uint _e44 = d;
            uint _e47 = d;
            float _e50 = q[q_at + _e47];
            float _e51 = round_to_f16_(_e50);
            query.inner[_e44] = _e51;
        }
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    uint _e57 = ap.n_head;
    uint _e62 = ap.max_keys;
    uint s_at = ((row * _e57) + head) * _e62;
    j = lid;
    uint2 loop_bound_3 = uint2(4294967295u);
    bool loop_init_3 = true;
    while(true) {
        if (metal::all(loop_bound_3 == uint2(0u))) { break; }
        loop_bound_3 -= uint2(loop_bound_3.y == 0u, 1u);
        if (!loop_init_3) {
            uint _e132 = j;
            j = _e132 + 64u;
        }
        loop_init_3 = false;
        uint _e67 = j;
        if (_e67 < n_keys) {
        } else {
            break;
        }
        {
            uint _e69 = j;
            uint _e73 = ap.n_cells;
            uint k_word = naga_div((naga_mod(first + _e69, _e73) * kv_dim) + (kv_head * hd), 2u);
            s = 0.0;
            d_1 = 0u;
            uint2 loop_bound_4 = uint2(4294967295u);
            bool loop_init_4 = true;
            while(true) {
                if (metal::all(loop_bound_4 == uint2(0u))) { break; }
                loop_bound_4 -= uint2(loop_bound_4.y == 0u, 1u);
                if (!loop_init_4) {
                    uint _e117 = d_1;
                    d_1 = _e117 + 1u;
                }
                loop_init_4 = false;
                uint _e84 = d_1;
                if (_e84 < naga_div(hd, 2u)) {
                } else {
                    break;
                }
                {
                    uint _e89 = d_1;
                    uint pair = keys[k_word + _e89];
                    float _e93 = s;
                    uint _e96 = d_1;
                    float _e99 = query.inner[2u * _e96];
                    float _e100 = f16_bits_to_f32_(pair);
                    uint _e104 = d_1;
                    float _e109 = query.inner[(2u * _e104) + 1u];
                    float _e112 = f16_bits_to_f32_(pair >> 16u);
                    s = _e93 + ((_e99 * _e100) + (_e109 * _e112));
                }
            }
            float _e119 = s;
            float _e122 = ap.scale;
            s = _e119 * _e122;
            uint _e125 = j;
            float _e128 = s;
            scores[s_at + _e125] = _e128;
            float _e129 = local_max;
            float _e130 = s;
            local_max = metal::max(_e129, _e130);
        }
    }
    float _e135 = local_max;
    float _e136 = reduce_max(lid, _e135, partial);
    j_1 = lid;
    uint2 loop_bound_5 = uint2(4294967295u);
    bool loop_init_5 = true;
    while(true) {
        if (metal::all(loop_bound_5 == uint2(0u))) { break; }
        loop_bound_5 -= uint2(loop_bound_5.y == 0u, 1u);
        if (!loop_init_5) {
            uint _e155 = j_1;
            j_1 = _e155 + 64u;
        }
        loop_init_5 = false;
        uint _e140 = j_1;
        if (_e140 < n_keys) {
        } else {
            break;
        }
        {
            uint _e143 = j_1;
            float _e146 = scores[s_at + _e143];
            float e = metal::exp(_e146 - _e136);
            uint _e150 = j_1;
            scores[s_at + _e150] = e;
            float _e153 = local_sum;
            local_sum = _e153 + e;
        }
    }
    float _e158 = local_sum;
    float _e159 = reduce_sum(lid, _e158, partial);
    float inverse = 1.0 / _e159;
    j_2 = lid;
    uint2 loop_bound_6 = uint2(4294967295u);
    bool loop_init_6 = true;
    while(true) {
        if (metal::all(loop_bound_6 == uint2(0u))) { break; }
        loop_bound_6 -= uint2(loop_bound_6.y == 0u, 1u);
        if (!loop_init_6) {
            uint _e176 = j_2;
            j_2 = _e176 + 64u;
        }
        loop_init_6 = false;
        uint _e163 = j_2;
        if (_e163 < n_keys) {
        } else {
            break;
        }
        {
            uint _e166 = j_2;
            uint _e170 = j_2;
            float _e173 = scores[s_at + _e170];
            float _e175 = round_to_f16_(_e173 * inverse);
            scores[s_at + _e166] = _e175;
        }
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_device);
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    d_2 = lid;
    uint2 loop_bound_7 = uint2(4294967295u);
    bool loop_init_7 = true;
    while(true) {
        if (metal::all(loop_bound_7 == uint2(0u))) { break; }
        loop_bound_7 -= uint2(loop_bound_7.y == 0u, 1u);
        if (!loop_init_7) {
            uint _e216 = d_2;
            d_2 = _e216 + 64u;
        }
        loop_init_7 = false;
        uint _e180 = d_2;
        if (_e180 < hd) {
        } else {
            break;
        }
        {
            acc = 0.0;
            j_3 = 0u;
            uint2 loop_bound_8 = uint2(4294967295u);
            bool loop_init_8 = true;
            while(true) {
                if (metal::all(loop_bound_8 == uint2(0u))) { break; }
                loop_bound_8 -= uint2(loop_bound_8.y == 0u, 1u);
                if (!loop_init_8) {
                    uint _e209 = j_3;
                    j_3 = _e209 + 1u;
                }
                loop_init_8 = false;
                uint _e186 = j_3;
                if (_e186 < n_keys) {
                } else {
                    break;
                }
                {
                    uint _e188 = j_3;
                    uint _e192 = ap.n_cells;
                    uint _e197 = d_2;
                    uint v_at = ((naga_mod(first + _e188, _e192) * kv_dim) + (kv_head * hd)) + _e197;
                    float _e199 = acc;
                    uint _e201 = j_3;
                    float _e204 = scores[s_at + _e201];
                    float _e205 = value_at(v_at, values, _buffer_sizes);
                    acc = _e199 + (_e204 * _e205);
                }
            }
            uint _e212 = d_2;
            float _e215 = acc;
            out[q_at + _e212] = _e215;
        }
    }
    return;
}
