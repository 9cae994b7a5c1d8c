/* G.711 kernel: first function; the full kernel grows from here. */
#include "kernel.h"

static uint8_t ulaw_one(int16_t pcm)
{
    /* ITU-T G.191 (g711.c) linear -> u-law: 14-bit magnitude, bias 33. */
    int16_t x = (int16_t)(pcm >> 2);
    uint8_t mask;
    if (x < 0) { x = (int16_t)-x; mask = 0x7F; } else { mask = 0xFF; }
    if (x > 8159) x = 8159;
    x = (int16_t)(x + 33);
    int seg = 0;
    for (int16_t t = (int16_t)(x >> 6); t; t = (int16_t)(t >> 1)) seg++;
    uint8_t code = (uint8_t)((seg << 4) | ((x >> (seg + 1)) & 0x0F));
    return (uint8_t)(code ^ mask);
}

void rv_s16_to_ulaw(const int16_t *src, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = ulaw_one(src[i]);
}
