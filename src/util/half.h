/* half.h: fp32 <-> bf16 and fp32 <-> fp16 (IEEE binary16) conversions, bit-exact and
 * header-only (static inline) so the hot loops of the activation ops can inline them.
 * The one place this logic lives: safetensors.c's st_* conversions call these.
 *
 * bf16 = the top 16 bits of an fp32 (1 sign, 8 exponent, 7 mantissa bits): widening is a
 * shift; narrowing rounds to nearest, ties to even, and keeps a NaN a (quiet) NaN (the
 * plain rounding add could carry a NaN's payload into the exponent and make it inf).
 * fp16 = 1 sign, 5 exponent (bias 15), 10 mantissa bits: narrowing rounds to nearest
 * even, including into the subnormals (units of 2^-24); |x| >= 65520 becomes inf. Both
 * widen exactly (every bf16 / fp16 value is an fp32 value). */
#ifndef VQA_HALF_H
#define VQA_HALF_H

#include <stdint.h>
#include <string.h>

static inline float half_bits_to_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline uint32_t half_f32_to_bits(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static inline float bf16_to_f32(uint16_t b) { return half_bits_to_f32((uint32_t)b << 16); }

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x = half_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    x += 0x7fffu + ((x >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(x >> 16);
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign; /* +-0 */
        } else {
            /* subnormal: mant * 2^-24; normalize so the leading 1 lands on bit 10 */
            uint32_t e = 127 - 15 + 1;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or nan keeping its payload */
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    return half_bits_to_f32(bits);
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t x = half_f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    /* nan: keep the top payload bits and force the quiet bit, so it cannot become inf */
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (ax < 0x38800000u) {                                    /* below 2^-14: subnormal */
        if (ax <= 0x33000000u) return sign;                    /* <= 2^-25 rounds to 0 (tie to even) */
        uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - (ax >> 23); /* result in units of 2^-24 */
        uint32_t r = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = (ax >> 13) - (112u << 10); /* rebias exponent 127 -> 15 */
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++; /* a carry may reach inf: right */
    return (uint16_t)(sign | r);
}

#endif
