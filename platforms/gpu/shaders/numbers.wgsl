// Number conversions done with integer arithmetic, so that every driver gets the same bits
// (WGSL lets f16 conversions round either way and GPUs may flush f16 subnormals).

// The f16 whose bits are the low 16 bits of `h`, widened exactly to f32 (subnormals kept).
fn f16_bits_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let exponent = (h >> 10u) & 0x1fu;
    let mantissa = h & 0x3ffu;
    if (exponent == 0u) {
        // Subnormal (or zero): mantissa * 2^-24, exact in f32.
        let magnitude = f32(mantissa) * 5.9604644775390625e-8;
        return select(magnitude, -magnitude, sign != 0u);
    }
    if (exponent == 31u) {
        return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
    }
    return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}

// The bits of the f16 nearest to `x` (ties to even), in the low 16 bits: what the CPU's
// `half::f16::from_f32` gives. Overflow gives infinity; NaN stays NaN.
fn f32_to_f16_bits(x: f32) -> u32 {
    let bits = bitcast<u32>(x);
    let sign = (bits >> 16u) & 0x8000u;
    let magnitude = bits & 0x7fffffffu;
    if (magnitude > 0x7f800000u) {
        return sign | 0x7e00u;
    }
    if (magnitude < 0x38800000u) {
        // Below f16's smallest normal (2^-14): a multiple of 2^-24, rounded half to even
        // (1024 steps carry into the smallest normal, as they should).
        return sign | u32(round(bitcast<f32>(magnitude) * 16777216.0));
    }
    // Normal: keep 10 mantissa bits, rounding the 13 dropped ones half to even.
    let rounded = (magnitude + 0x0fffu + ((magnitude >> 13u) & 1u)) & 0xffffe000u;
    if (rounded >= 0x47800000u) {
        return sign | 0x7c00u;
    }
    return sign | ((rounded - 0x38000000u) >> 13u);
}

// `x` rounded to the nearest f16 (ties to even) and widened back to f32: what storing a
// value as f16 does on the CPU.
fn round_to_f16(x: f32) -> f32 {
    return f16_bits_to_f32(f32_to_f16_bits(x));
}
