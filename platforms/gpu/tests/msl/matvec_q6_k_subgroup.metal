// language: metal2.3
#include <metal_stdlib>
#include <simd/simd.h>

using metal::uint;

struct _mslBufferSizes {
    uint size0;
    uint size1;
    uint size3;
    uint size4;
};

struct Params {
    uint n_cols;
    uint n_rows;
    uint row_bytes;
    uint first_row;
    uint out_stride;
    uint pad0_;
    uint pad1_;
    uint pad2_;
};
typedef uint type_2[1];
typedef float type_3[1];
struct type_10 {
    metal::float4 inner[64];
};
constant uint WG = 64u;
constant uint ROWS = 4u;
constant uint ONES = 16843009u;
constant uint LOW_NIBBLES = 252645135u;

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
    uint bits_1 = as_type<uint>(x);
    uint sign_1 = (bits_1 >> 16u) & 32768u;
    uint magnitude_1 = bits_1 & 2147483647u;
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

uint load_u32_at(
    uint at,
    device type_2 const& weights,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint word = at >> 2u;
    uint shift = (at & 3u) * 8u;
    uint low = weights[word];
    if (shift == 0u) {
        return low;
    }
    uint _e17 = weights[word + 1u];
    return (low >> shift) | (_e17 << (32u - shift));
}

float load_f16_at(
    uint at_1,
    device type_2 const& weights,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint _e5 = weights[at_1 >> 2u];
    float _e11 = f16_bits_to_f32_(_e5 >> ((at_1 & 2u) * 8u));
    return _e11;
}

uint fifth_bits(
    uint bits
) {
    return ((((bits & 1u) | ((bits & 2u) << 7u)) | ((bits & 4u) << 14u)) | ((bits & 8u) << 21u)) << 4u;
}

uint group_row(
    uint group_1,
    uint r,
    constant Params& params
) {
    uint _e7 = params.n_rows;
    return metal::min((group_1 * ROWS) + r, _e7 - 1u);
}

void write_rows(
    uint group_2,
    uint vector,
    metal::float4 sums,
    device type_3& out,
    constant Params& params,
    constant _mslBufferSizes& _buffer_sizes
) {
    uint r_1 = 0u;
    uint2 loop_bound = uint2(4294967295u);
    bool loop_init = true;
    while(true) {
        if (metal::all(loop_bound == uint2(0u))) { break; }
        loop_bound -= uint2(loop_bound.y == 0u, 1u);
        if (!loop_init) {
            uint _e30 = r_1;
            r_1 = _e30 + 1u;
        }
        loop_init = false;
        uint _e5 = r_1;
        if (_e5 < ROWS) {
        } else {
            break;
        }
        {
            uint _e10 = r_1;
            uint row = (group_2 * ROWS) + _e10;
            uint _e14 = params.n_rows;
            if (row < _e14) {
                uint _e19 = params.out_stride;
                uint _e23 = params.first_row;
                uint _e27 = r_1;
                out[((vector * _e19) + _e23) + row] = sums[_e27];
            }
        }
    }
    return;
}

int sign_extend_byte(
    uint x_2
) {
    return as_type<int>(x_2 << 24u) >> 24u;
}

uint k_scale_byte(
    metal::uint3 scales,
    uint k
) {
    return (scales[k >> 2u] >> ((k & 3u) * 8u)) & 255u;
}

metal::int2 k_scale_min(
    metal::uint3 scales_1,
    uint j
) {
    if (j < 4u) {
        uint _e4 = k_scale_byte(scales_1, j);
        uint _e10 = k_scale_byte(scales_1, j + 4u);
        return metal::int2(static_cast<int>(_e4 & 63u), static_cast<int>(_e10 & 63u));
    }
    uint _e17 = k_scale_byte(scales_1, j + 4u);
    uint _e22 = k_scale_byte(scales_1, j - 4u);
    uint sc = (_e17 & 15u) | ((_e22 >> 6u) << 4u);
    uint _e30 = k_scale_byte(scales_1, j + 4u);
    uint _e33 = k_scale_byte(scales_1, j);
    uint m = (_e30 >> 4u) | ((_e33 >> 6u) << 4u);
    return metal::int2(static_cast<int>(sc), static_cast<int>(m));
}

uint naga_div(uint lhs, uint rhs) {
    return lhs / metal::select(rhs, 1u, rhs == 0u);
}

int naga_dot_int4(metal::int4 a, metal::int4 b) {
    return ( + a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w);
}

metal::float4 row_partials(
    uint group_3,
    uint vector_1,
    uint lid_1,
    device type_2 const& weights,
    constant Params& params,
    device type_2 const& act_q,
    device type_3 const& act_s,
    constant _mslBufferSizes& _buffer_sizes
) {
    metal::float4 acc = metal::float4(0.0);
    uint sb = {};
    uint r_2 = {};
    uint _e5 = params.n_cols;
    uint n_supers = naga_div(_e5, 256u);
    uint lane_1 = lid_1 & 15u;
    uint half_ = lane_1 >> 3u;
    uint l0_ = (lane_1 & 7u) * 4u;
    uint sub = naga_div(l0_, 16u);
    sb = lid_1 >> 4u;
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e206 = sb;
            sb = _e206 + 4u;
        }
        loop_init_1 = false;
        uint _e24 = sb;
        if (_e24 < n_supers) {
        } else {
            break;
        }
        {
            uint _e28 = params.n_cols;
            uint _e30 = sb;
            uint a_word = naga_div((((vector_1 * _e28) + (_e30 * 256u)) + (128u * half_)) + l0_, 4u);
            uint _e42 = act_q[a_word];
            uint _e47 = act_q[a_word + 8u];
            uint _e52 = act_q[a_word + 16u];
            uint _e57 = act_q[a_word + 24u];
            metal::uint4 a = metal::uint4(_e42, _e47, _e52, _e57);
            uint _e60 = a.x;
            packed_char4 reinterpreted_packed_char4_e59 = as_type<packed_char4>(ONES);
            packed_char4 reinterpreted_packed_char4_e60 = as_type<packed_char4>(_e60);
            uint _e63 = a.y;
            packed_char4 reinterpreted_packed_char4_e62 = as_type<packed_char4>(ONES);
            packed_char4 reinterpreted_packed_char4_e63 = as_type<packed_char4>(_e63);
            uint _e66 = a.z;
            packed_char4 reinterpreted_packed_char4_e65 = as_type<packed_char4>(ONES);
            packed_char4 reinterpreted_packed_char4_e66 = as_type<packed_char4>(_e66);
            uint _e69 = a.w;
            packed_char4 reinterpreted_packed_char4_e68 = as_type<packed_char4>(ONES);
            packed_char4 reinterpreted_packed_char4_e69 = as_type<packed_char4>(_e69);
            metal::int4 a_sum = metal::int4(( + reinterpreted_packed_char4_e59[0] * reinterpreted_packed_char4_e60[0] + reinterpreted_packed_char4_e59[1] * reinterpreted_packed_char4_e60[1] + reinterpreted_packed_char4_e59[2] * reinterpreted_packed_char4_e60[2] + reinterpreted_packed_char4_e59[3] * reinterpreted_packed_char4_e60[3]), ( + reinterpreted_packed_char4_e62[0] * reinterpreted_packed_char4_e63[0] + reinterpreted_packed_char4_e62[1] * reinterpreted_packed_char4_e63[1] + reinterpreted_packed_char4_e62[2] * reinterpreted_packed_char4_e63[2] + reinterpreted_packed_char4_e62[3] * reinterpreted_packed_char4_e63[3]), ( + reinterpreted_packed_char4_e65[0] * reinterpreted_packed_char4_e66[0] + reinterpreted_packed_char4_e65[1] * reinterpreted_packed_char4_e66[1] + reinterpreted_packed_char4_e65[2] * reinterpreted_packed_char4_e66[2] + reinterpreted_packed_char4_e65[3] * reinterpreted_packed_char4_e66[3]), ( + reinterpreted_packed_char4_e68[0] * reinterpreted_packed_char4_e69[0] + reinterpreted_packed_char4_e68[1] * reinterpreted_packed_char4_e69[1] + reinterpreted_packed_char4_e68[2] * reinterpreted_packed_char4_e69[2] + reinterpreted_packed_char4_e68[3] * reinterpreted_packed_char4_e69[3]));
            uint _e75 = sb;
            float d_act = act_s[17u * ((vector_1 * n_supers) + _e75)];
            r_2 = 0u;
            uint2 loop_bound_2 = uint2(4294967295u);
            bool loop_init_2 = true;
            while(true) {
                if (metal::all(loop_bound_2 == uint2(0u))) { break; }
                loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
                if (!loop_init_2) {
                    uint _e204 = r_2;
                    r_2 = _e204 + 1u;
                }
                loop_init_2 = false;
                uint _e82 = r_2;
                if (_e82 < ROWS) {
                } else {
                    break;
                }
                {
                    uint _e85 = r_2;
                    uint _e86 = group_row(group_3, _e85, params);
                    uint _e89 = params.row_bytes;
                    uint _e91 = sb;
                    uint at_2 = (_e86 * _e89) + (_e91 * 210u);
                    uint _e99 = load_u32_at((at_2 + (64u * half_)) + l0_, weights, _buffer_sizes);
                    uint _e106 = load_u32_at(((at_2 + (64u * half_)) + 32u) + l0_, weights, _buffer_sizes);
                    uint _e113 = load_u32_at(((at_2 + 128u) + (32u * half_)) + l0_, weights, _buffer_sizes);
                    uint _e120 = load_u32_at(((at_2 + 192u) + (8u * half_)) + sub, weights, _buffer_sizes);
                    uint _e127 = load_u32_at(((at_2 + 196u) + (8u * half_)) + sub, weights, _buffer_sizes);
                    metal::uint4 q = metal::uint4((_e99 & LOW_NIBBLES) | ((_e113 & 50529027u) << 4u), (_e106 & LOW_NIBBLES) | (((_e113 >> 2u) & 50529027u) << 4u), ((_e99 >> 4u) & LOW_NIBBLES) | (((_e113 >> 4u) & 50529027u) << 4u), ((_e106 >> 4u) & LOW_NIBBLES) | (((_e113 >> 6u) & 50529027u) << 4u));
                    uint _e167 = q.x;
                    uint _e168 = a.x;
                    packed_char4 reinterpreted_packed_char4_e167 = as_type<packed_char4>(_e167);
                    packed_char4 reinterpreted_packed_char4_e168 = as_type<packed_char4>(_e168);
                    uint _e170 = q.y;
                    uint _e171 = a.y;
                    packed_char4 reinterpreted_packed_char4_e170 = as_type<packed_char4>(_e170);
                    packed_char4 reinterpreted_packed_char4_e171 = as_type<packed_char4>(_e171);
                    uint _e173 = q.z;
                    uint _e174 = a.z;
                    packed_char4 reinterpreted_packed_char4_e173 = as_type<packed_char4>(_e173);
                    packed_char4 reinterpreted_packed_char4_e174 = as_type<packed_char4>(_e174);
                    uint _e176 = q.w;
                    uint _e177 = a.w;
                    packed_char4 reinterpreted_packed_char4_e176 = as_type<packed_char4>(_e176);
                    packed_char4 reinterpreted_packed_char4_e177 = as_type<packed_char4>(_e177);
                    metal::int4 dots = as_type<metal::int4>(as_type<metal::uint4>(metal::int4(( + reinterpreted_packed_char4_e167[0] * reinterpreted_packed_char4_e168[0] + reinterpreted_packed_char4_e167[1] * reinterpreted_packed_char4_e168[1] + reinterpreted_packed_char4_e167[2] * reinterpreted_packed_char4_e168[2] + reinterpreted_packed_char4_e167[3] * reinterpreted_packed_char4_e168[3]), ( + reinterpreted_packed_char4_e170[0] * reinterpreted_packed_char4_e171[0] + reinterpreted_packed_char4_e170[1] * reinterpreted_packed_char4_e171[1] + reinterpreted_packed_char4_e170[2] * reinterpreted_packed_char4_e171[2] + reinterpreted_packed_char4_e170[3] * reinterpreted_packed_char4_e171[3]), ( + reinterpreted_packed_char4_e173[0] * reinterpreted_packed_char4_e174[0] + reinterpreted_packed_char4_e173[1] * reinterpreted_packed_char4_e174[1] + reinterpreted_packed_char4_e173[2] * reinterpreted_packed_char4_e174[2] + reinterpreted_packed_char4_e173[3] * reinterpreted_packed_char4_e174[3]), ( + reinterpreted_packed_char4_e176[0] * reinterpreted_packed_char4_e177[0] + reinterpreted_packed_char4_e176[1] * reinterpreted_packed_char4_e177[1] + reinterpreted_packed_char4_e176[2] * reinterpreted_packed_char4_e177[2] + reinterpreted_packed_char4_e176[3] * reinterpreted_packed_char4_e177[3]))) - as_type<metal::uint4>(as_type<metal::int4>(as_type<uint>(32) * as_type<metal::uint4>(a_sum))));
                    int _e183 = sign_extend_byte(_e120);
                    int _e186 = sign_extend_byte(_e120 >> 16u);
                    int _e187 = sign_extend_byte(_e127);
                    int _e190 = sign_extend_byte(_e127 >> 16u);
                    metal::int4 sc_1 = metal::int4(_e183, _e186, _e187, _e190);
                    uint _e192 = r_2;
                    float _e194 = acc[_e192];
                    float _e197 = load_f16_at(at_2 + 208u, weights, _buffer_sizes);
                    acc[_e192] = _e194 + ((d_act * _e197) * static_cast<float>(naga_dot_int4(sc_1, dots)));
                }
            }
        }
    }
    metal::float4 _e209 = acc;
    return _e209;
}

struct main_Input {
};
[[max_total_threads_per_threadgroup(64)]] kernel void main_(
  metal::uint3 group [[threadgroup_position_in_grid]]
, uint lid [[thread_index_in_threadgroup]]
, uint subgroup [[simdgroup_index_in_threadgroup]]
, uint n_subgroups [[simdgroups_per_threadgroup]]
, uint lane [[thread_index_in_simdgroup]]
, device type_2 const& weights [[user(fake0)]]
, device type_3& out [[user(fake0)]]
, constant Params& params [[user(fake0)]]
, device type_2 const& act_q [[user(fake0)]]
, device type_3 const& act_s [[user(fake0)]]
, threadgroup type_10& partial
, constant _mslBufferSizes& _buffer_sizes [[user(fake0)]]
) {
    metal::float4 total = metal::float4(0.0);
    uint s = 0u;
    metal::float4 _e7 = row_partials(group.x, group.y, lid, weights, params, act_q, act_s, _buffer_sizes);
    metal::float4 unnamed = metal::simd_sum(_e7);
    if (lane == 0u) {
        partial.inner[subgroup] = unnamed;
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    if (lid == 0u) {
        uint2 loop_bound_3 = uint2(4294967295u);
        bool loop_init_3 = true;
        while(true) {
            if (metal::all(loop_bound_3 == uint2(0u))) { break; }
            loop_bound_3 -= uint2(loop_bound_3.y == 0u, 1u);
            if (!loop_init_3) {
                uint _e29 = s;
                s = _e29 + 1u;
            }
            loop_init_3 = false;
            uint _e20 = s;
            if (_e20 < n_subgroups) {
            } else {
                break;
            }
            {
                metal::float4 _e22 = total;
                uint _e24 = s;
                metal::float4 _e26 = partial.inner[_e24];
                total = _e22 + _e26;
            }
        }
        metal::float4 _e33 = total;
        write_rows(group.x, group.y, _e33, out, params, _buffer_sizes);
        return;
    } else {
        return;
    }
}
