#ifndef RVOIP_MEDIA_KERNEL_H
#define RVOIP_MEDIA_KERNEL_H
#include <stddef.h>
#include <stdint.h>

/* cdef-begin */
void rv_s16_to_ulaw(const int16_t *src, uint8_t *dst, size_t n);
/* cdef-end */

#endif
