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
struct type_8 {
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
    uint c = lane_1 >> 2u;
    uint p = lane_1 & 3u;
    uint min_sub = lane_1 & 7u;
    sb = lid_1 >> 4u;
    uint2 loop_bound_1 = uint2(4294967295u);
    bool loop_init_1 = true;
    while(true) {
        if (metal::all(loop_bound_1 == uint2(0u))) { break; }
        loop_bound_1 -= uint2(loop_bound_1.y == 0u, 1u);
        if (!loop_init_1) {
            uint _e251 = sb;
            sb = _e251 + 4u;
        }
        loop_init_1 = false;
        uint _e22 = sb;
        if (_e22 < n_supers) {
        } else {
            break;
        }
        {
            uint _e26 = params.n_cols;
            uint _e28 = sb;
            uint a_low = (naga_div((vector_1 * _e26) + (_e28 * 256u), 4u) + (16u * c)) + (2u * p);
            uint a0_ = act_q[a_low];
            uint a1_ = act_q[a_low + 1u];
            uint a2_ = act_q[a_low + 8u];
            uint a3_ = act_q[a_low + 9u];
            uint _e60 = sb;
            uint s_at = 17u * ((vector_1 * n_supers) + _e60);
            float d_act = act_s[s_at];
            float _e73 = act_s[(s_at + 1u) + (2u * min_sub)];
            float _e81 = act_s[(s_at + 2u) + (2u * min_sub)];
            float min_sum = (lane_1 < 8u) ? (_e73 + _e81) : 0.0;
            r_2 = 0u;
            uint2 loop_bound_2 = uint2(4294967295u);
            bool loop_init_2 = true;
            while(true) {
                if (metal::all(loop_bound_2 == uint2(0u))) { break; }
                loop_bound_2 -= uint2(loop_bound_2.y == 0u, 1u);
                if (!loop_init_2) {
                    uint _e249 = r_2;
                    r_2 = _e249 + 1u;
                }
                loop_init_2 = false;
                uint _e89 = r_2;
                if (_e89 < ROWS) {
                } else {
                    break;
                }
                {
                    uint _e92 = r_2;
                    uint _e93 = group_row(group_3, _e92, params);
                    uint _e96 = params.row_bytes;
                    uint _e98 = sb;
                    uint word_1 = naga_div((_e93 * _e96) + (_e98 * 176u), 4u);
                    uint _e106 = weights[word_1];
                    float _e107 = f16_bits_to_f32_(_e106);
                    uint _e110 = weights[word_1];
                    float _e113 = f16_bits_to_f32_(_e110 >> 16u);
                    uint _e118 = weights[word_1 + 1u];
                    uint _e123 = weights[word_1 + 2u];
                    uint _e128 = weights[word_1 + 3u];
                    metal::uint3 scales_2 = metal::uint3(_e118, _e123, _e128);
                    uint h0_ = weights[(word_1 + 4u) + (2u * p)];
                    uint h1_ = weights[(word_1 + 5u) + (2u * p)];
                    uint q0_ = weights[((word_1 + 12u) + (8u * c)) + (2u * p)];
                    uint q1_ = weights[((word_1 + 13u) + (8u * c)) + (2u * p)];
                    uint low0_ = (q0_ & LOW_NIBBLES) | (((h0_ >> (2u * c)) & ONES) << 4u);
                    uint low1_ = (q1_ & LOW_NIBBLES) | (((h1_ >> (2u * c)) & ONES) << 4u);
                    uint high0_ = ((q0_ >> 4u) & LOW_NIBBLES) | (((h0_ >> ((2u * c) + 1u)) & ONES) << 4u);
                    uint high1_ = ((q1_ >> 4u) & LOW_NIBBLES) | (((h1_ >> ((2u * c) + 1u)) & ONES) << 4u);
                    packed_char4 reinterpreted_packed_char4_e177 = as_type<packed_char4>(low0_);
                    packed_char4 reinterpreted_packed_char4_e42 = as_type<packed_char4>(a0_);
                    packed_char4 reinterpreted_packed_char4_e187 = as_type<packed_char4>(low1_);
                    packed_char4 reinterpreted_packed_char4_e47 = as_type<packed_char4>(a1_);
                    int low_1 = as_type<int>(as_type<uint>(( + reinterpreted_packed_char4_e177[0] * reinterpreted_packed_char4_e42[0] + reinterpreted_packed_char4_e177[1] * reinterpreted_packed_char4_e42[1] + reinterpreted_packed_char4_e177[2] * reinterpreted_packed_char4_e42[2] + reinterpreted_packed_char4_e177[3] * reinterpreted_packed_char4_e42[3])) + as_type<uint>(( + reinterpreted_packed_char4_e187[0] * reinterpreted_packed_char4_e47[0] + reinterpreted_packed_char4_e187[1] * reinterpreted_packed_char4_e47[1] + reinterpreted_packed_char4_e187[2] * reinterpreted_packed_char4_e47[2] + reinterpreted_packed_char4_e187[3] * reinterpreted_packed_char4_e47[3])));
                    packed_char4 reinterpreted_packed_char4_e201 = as_type<packed_char4>(high0_);
                    packed_char4 reinterpreted_packed_char4_e52 = as_type<packed_char4>(a2_);
                    packed_char4 reinterpreted_packed_char4_e215 = as_type<packed_char4>(high1_);
                    packed_char4 reinterpreted_packed_char4_e57 = as_type<packed_char4>(a3_);
                    int high = as_type<int>(as_type<uint>(( + reinterpreted_packed_char4_e201[0] * reinterpreted_packed_char4_e52[0] + reinterpreted_packed_char4_e201[1] * reinterpreted_packed_char4_e52[1] + reinterpreted_packed_char4_e201[2] * reinterpreted_packed_char4_e52[2] + reinterpreted_packed_char4_e201[3] * reinterpreted_packed_char4_e52[3])) + as_type<uint>(( + reinterpreted_packed_char4_e215[0] * reinterpreted_packed_char4_e57[0] + reinterpreted_packed_char4_e215[1] * reinterpreted_packed_char4_e57[1] + reinterpreted_packed_char4_e215[2] * reinterpreted_packed_char4_e57[2] + reinterpreted_packed_char4_e215[3] * reinterpreted_packed_char4_e57[3])));
                    metal::int2 _e224 = k_scale_min(scales_2, 2u * c);
                    metal::int2 _e231 = k_scale_min(scales_2, (2u * c) + 1u);
                    int sum = as_type<int>(as_type<uint>(as_type<int>(as_type<uint>(_e224.x) * as_type<uint>(low_1))) + as_type<uint>(as_type<int>(as_type<uint>(_e231.x) * as_type<uint>(high))));
                    metal::int2 _e235 = k_scale_min(scales_2, min_sub);
                    float m_1 = static_cast<float>(_e235.y);
                    uint _e238 = r_2;
                    float _e240 = acc[_e238];
                    acc[_e238] = _e240 + (d_act * ((_e107 * static_cast<float>(sum)) - ((_e113 * m_1) * min_sum)));
                }
            }
        }
    }
    metal::float4 _e254 = acc;
    return _e254;
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
, threadgroup type_8& partial
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
