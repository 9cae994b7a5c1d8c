/* G.711 mu-law / A-law, bit-exact with ITU-T G.191 (STL g711.c).
 *
 * Decode uses 256-entry tables; encode uses a 64K-entry table per law built once
 * from the G.191 bit logic (measured faster than the logic itself on 160-sample
 * frames: see tools/bench/g711.py). The logic versions stay exported so the table
 * can be checked against them.
 */
#include <string.h>
#include "kernel.h"

static uint8_t ulaw_enc_table[65536];
static uint8_t alaw_enc_table[65536];
static int16_t ulaw_dec_table[256];
static int16_t alaw_dec_table[256];
static int initialised = 0;

/* 1 + bit length of v (v < 128): the G.191 "segno" search without a loop. */
static const uint8_t seg_of[128] = {
    1, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
};

static inline uint8_t ulaw_logic(int16_t lin)
{
    /* G.191 ulaw_compress: magnitude of a negative sample is the one's complement. */
    int32_t x = lin;
    int32_t absno = (x < 0 ? (~x) >> 2 : x >> 2) + 33;
    if (absno > 0x1FFF) absno = 0x1FFF;
    int32_t segno = seg_of[absno >> 6];
    int32_t high = 8 - segno;
    int32_t low = 0x0F - ((absno >> segno) & 0x0F);
    int32_t code = (high << 4) | low;
    if (x >= 0) code |= 0x80;
    return (uint8_t)code;
}

static inline uint8_t alaw_logic(int16_t lin)
{
    /* G.191 alaw_compress: 12-bit magnitude (one's complement for negatives). */
    int32_t x = lin;
    int32_t ix = x < 0 ? (~x) >> 4 : x >> 4;
    if (ix > 15) {
        int32_t iexp = 1;
        while (ix > 16 + 15) { ix >>= 1; iexp++; }
        ix -= 16;
        ix += iexp << 4;
    }
    if (x >= 0) ix |= 0x80;
    return (uint8_t)(ix ^ 0x55);
}

static int16_t ulaw_expand(uint8_t code)
{
    /* G.191 ulaw_expand */
    int32_t sign = code < 0x80 ? -1 : 1;
    int32_t mantissa = ~code;
    int32_t exponent = (mantissa >> 4) & 0x07;
    int32_t segment = exponent + 1;
    mantissa &= 0x0F;
    int32_t step = 4 << segment;
    return (int16_t)(sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33));
}

static int16_t alaw_expand(uint8_t code)
{
    /* G.191 alaw_expand */
    int32_t ix = (code ^ 0x55) & 0x7F;
    int32_t iexp = ix >> 4;
    int32_t mant = ix & 0x0F;
    if (iexp > 0) mant += 16;
    mant = (mant << 4) + 0x08;
    if (iexp > 1) mant <<= (iexp - 1);
    return (int16_t)(code > 127 ? mant : -mant);
}

void rv_g711_init(void)
{
    if (initialised) return;
    for (int32_t i = 0; i < 65536; i++) {
        int16_t s = (int16_t)(i - 32768);
        ulaw_enc_table[(uint16_t)s] = ulaw_logic(s);
        alaw_enc_table[(uint16_t)s] = alaw_logic(s);
    }
    for (int32_t c = 0; c < 256; c++) {
        ulaw_dec_table[c] = ulaw_expand((uint8_t)c);
        alaw_dec_table[c] = alaw_expand((uint8_t)c);
    }
    initialised = 1;
}

/* restrict: the output never aliases the input or the tables, so the loops can be
 * unrolled without reloading (measured ~2x on decode). */
void rv_ulaw_encode(const int16_t *restrict src, uint8_t *restrict dst, size_t n)
{
    const uint8_t *restrict t = ulaw_enc_table;
    for (size_t i = 0; i < n; i++) dst[i] = t[(uint16_t)src[i]];
}

void rv_alaw_encode(const int16_t *restrict src, uint8_t *restrict dst, size_t n)
{
    const uint8_t *restrict t = alaw_enc_table;
    for (size_t i = 0; i < n; i++) dst[i] = t[(uint16_t)src[i]];
}

void rv_ulaw_encode_logic(const int16_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = ulaw_logic(src[i]);
}

void rv_alaw_encode_logic(const int16_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = alaw_logic(src[i]);
}

void rv_ulaw_decode(const uint8_t *restrict src, int16_t *restrict dst, size_t n)
{
    const int16_t *restrict t = ulaw_dec_table;
    for (size_t i = 0; i < n; i++) dst[i] = t[src[i]];
}

void rv_alaw_decode(const uint8_t *restrict src, int16_t *restrict dst, size_t n)
{
    const int16_t *restrict t = alaw_dec_table;
    for (size_t i = 0; i < n; i++) dst[i] = t[src[i]];
}

/* Bytes-in/bytes-out variants: native-endian int16 PCM in a char buffer of 2n bytes
 * (no alignment assumed), so Python bytes objects pass straight through cffi. */
void rv_ulaw_encode_b(const char *src, char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int16_t s;
        memcpy(&s, src + 2 * i, 2);
        dst[i] = (char)ulaw_enc_table[(uint16_t)s];
    }
}

void rv_alaw_encode_b(const char *src, char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int16_t s;
        memcpy(&s, src + 2 * i, 2);
        dst[i] = (char)alaw_enc_table[(uint16_t)s];
    }
}

void rv_ulaw_decode_b(const char *src, char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) memcpy(dst + 2 * i, &ulaw_dec_table[(uint8_t)src[i]], 2);
}

void rv_alaw_decode_b(const char *src, char *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) memcpy(dst + 2 * i, &alaw_dec_table[(uint8_t)src[i]], 2);
}

void rv_g711_run(const rv_g711_job_t *job)
{
    switch (job->op) {
    case 0: rv_ulaw_encode((const int16_t *)job->src, (uint8_t *)job->dst, job->n); break;
    case 1: rv_alaw_encode((const int16_t *)job->src, (uint8_t *)job->dst, job->n); break;
    case 2: rv_ulaw_decode((const uint8_t *)job->src, (int16_t *)job->dst, job->n); break;
    case 3: rv_alaw_decode((const uint8_t *)job->src, (int16_t *)job->dst, job->n); break;
    default: break;
    }
}
