#ifndef RVOIP_MEDIA_KERNEL_H
#define RVOIP_MEDIA_KERNEL_H
#include <stddef.h>
#include <stdint.h>

#define RV_JB_MAX_SLOTS 64
#define RV_JB_MAX_PAYLOAD 320

/* Jitter buffer state: a fixed ring of slots indexed by extended sequence number. */
typedef struct {
    int64_t ext;          /* extended sequence number held, -1 when empty */
    uint32_t ts;
    uint16_t len;
    uint8_t data[RV_JB_MAX_PAYLOAD];
} rv_jb_slot_t;

/* Jitter buffer: counters and state are read by the Python wrapper (cffi struct). */
typedef struct {
    int32_t capacity, max_payload, samples_per_frame, clock_rate;
    int32_t min_frames, max_frames, target;
    int32_t started, playing, have_transit, buffered, advanced;
    int64_t next_ext, max_ext;
    uint32_t last_transit;
    int64_t jitter16;
    uint64_t received, played, late, duplicate, dropped_overflow, dropped_adapt, concealed;
    rv_jb_slot_t slots[RV_JB_MAX_SLOTS];
} rv_jb_t;

/* cdef-begin */
/* A prepared G.711 call: one pointer argument is the cheapest cffi call (per-frame use). */
typedef struct {
    const void *src;
    void *dst;
    size_t n;
    int op; /* 0 ulaw encode, 1 alaw encode, 2 ulaw decode, 3 alaw decode */
} rv_g711_job_t;
void rv_g711_run(const rv_g711_job_t *job);


void rv_g711_init(void);
void rv_ulaw_encode(const int16_t *src, uint8_t *dst, size_t n);
void rv_alaw_encode(const int16_t *src, uint8_t *dst, size_t n);
void rv_ulaw_encode_logic(const int16_t *src, uint8_t *dst, size_t n);
void rv_alaw_encode_logic(const int16_t *src, uint8_t *dst, size_t n);
void rv_ulaw_decode(const uint8_t *src, int16_t *dst, size_t n);
void rv_alaw_decode(const uint8_t *src, int16_t *dst, size_t n);
void rv_ulaw_encode_b(const char *src, char *dst, size_t n);
void rv_alaw_encode_b(const char *src, char *dst, size_t n);
void rv_ulaw_decode_b(const char *src, char *dst, size_t n);
void rv_alaw_decode_b(const char *src, char *dst, size_t n);

int rv_jb_init(rv_jb_t *jb, int capacity, int max_payload, int samples_per_frame,
               int clock_rate, int min_frames, int max_frames);
void rv_jb_reset(rv_jb_t *jb);
int rv_jb_insert(rv_jb_t *jb, uint16_t seq, uint32_t ts, const uint8_t *payload,
                 size_t len, double arrival);
int rv_jb_pop(rv_jb_t *jb, uint8_t *out, int *out_len, uint32_t *out_ts);
int rv_jb_peek(const rv_jb_t *jb, uint8_t *out);
void rv_jb_insert_batch(rv_jb_t *jb, size_t n, const uint16_t *seqs, const uint32_t *tss,
                        const uint8_t *payloads, size_t stride, const uint16_t *lens,
                        const double *arrivals, int8_t *results);
void rv_jb_pop_batch(rv_jb_t *jb, size_t n, uint8_t *out, size_t stride, int *out_lens,
                     int8_t *statuses);
void rv_jb_insert_many(rv_jb_t **jbs, size_t n, const uint16_t *seqs, const uint32_t *tss,
                       const uint8_t *payloads, size_t stride, const uint16_t *lens,
                       const double *arrivals, int8_t *results);
void rv_jb_pop_many(rv_jb_t **jbs, size_t n, uint8_t *out, size_t stride, int *out_lens,
                    int8_t *statuses);
/* cdef-end */

#endif
