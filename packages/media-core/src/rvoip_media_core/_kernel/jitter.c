/* Jitter buffer hot path: a fixed ring of slots indexed by extended RTP sequence number.
 *
 * The pure-Python class in rvoip_media_core/_jitter_py.py is the executable
 * specification of this file: every branch here has its twin there, and the
 * property tests drive both with the same packet streams.
 */
#include <math.h>
#include <string.h>
#include "kernel.h"

enum { JB_OK = 0, JB_LATE = 1, JB_DUPLICATE = 2, JB_INVALID = -1 };
enum { JB_FRAME = 0, JB_LOST = 1, JB_EMPTY = 2 };
#define JB_ADAPT_SLACK 2   /* frames above target before playout skips one */
#define JB_JITTER_MULT 3   /* target covers 3x the RFC 3550 jitter estimate */


static void jb_update_target(rv_jb_t *jb)
{
    int64_t j = jb->jitter16 >> 4;  /* RFC 3550 A.8: reported jitter = jitter >> 4 */
    int64_t spf = jb->samples_per_frame;
    int64_t t = 1 + (JB_JITTER_MULT * j + spf - 1) / spf;
    if (t < jb->min_frames) t = jb->min_frames;
    if (t > jb->max_frames) t = jb->max_frames;
    jb->target = (int32_t)t;
}

int rv_jb_init(rv_jb_t *jb, int capacity, int max_payload, int samples_per_frame,
               int clock_rate, int min_frames, int max_frames)
{
    if (capacity < 2 || capacity > RV_JB_MAX_SLOTS || max_payload < 1
        || max_payload > RV_JB_MAX_PAYLOAD || samples_per_frame < 1 || clock_rate < 1
        || min_frames < 1 || max_frames < min_frames || max_frames >= capacity)
        return -1;
    memset(jb, 0, sizeof(*jb));
    jb->capacity = capacity;
    jb->max_payload = max_payload;
    jb->samples_per_frame = samples_per_frame;
    jb->clock_rate = clock_rate;
    jb->min_frames = min_frames;
    jb->max_frames = max_frames;
    rv_jb_reset(jb);
    return 0;
}

void rv_jb_reset(rv_jb_t *jb)
{
    jb->started = 0;
    jb->playing = 0;
    jb->have_transit = 0;
    jb->buffered = 0;
    jb->next_ext = 0;
    jb->max_ext = 0;
    jb->last_transit = 0;
    jb->jitter16 = 0;
    jb->advanced = 0;
    jb->received = jb->played = jb->late = jb->duplicate = 0;
    jb->dropped_overflow = jb->dropped_adapt = jb->concealed = 0;
    for (int i = 0; i < RV_JB_MAX_SLOTS; i++) jb->slots[i].ext = -1;
    jb_update_target(jb);
}

int rv_jb_insert(rv_jb_t *jb, uint16_t seq, uint32_t ts, const uint8_t *payload,
                 size_t len, double arrival)
{
    if (len > (size_t)jb->max_payload) return JB_INVALID;
    jb->received++;
    int64_t ext;
    if (!jb->started) {
        ext = (int64_t)seq + 65536;
        jb->started = 1;
        jb->next_ext = ext;
        jb->max_ext = ext;
    } else {
        /* RFC 3550 A.1 idea: place seq nearest to the highest seen (16-bit wrap). */
        ext = jb->max_ext + (int16_t)(uint16_t)(seq - (uint16_t)jb->max_ext);
    }
    int64_t cap = jb->capacity;
    if (ext < jb->next_ext) {
        if (jb->advanced || jb->max_ext - ext >= cap) {
            jb->late++;
            return JB_LATE;
        }
        jb->next_ext = ext;  /* nothing played yet: an earlier first packet moves the start */
    }
    rv_jb_slot_t *slot = &jb->slots[ext % cap];
    if (slot->ext == ext) {
        jb->duplicate++;
        return JB_DUPLICATE;
    }
    if (ext - jb->next_ext >= cap) {
        /* Ring overflow: drop what falls out of the window, resume at the oldest kept. */
        int64_t floor_ext = ext - cap + 1;
        int64_t lowest = ext;
        for (int64_t i = 0; i < cap; i++) {
            rv_jb_slot_t *s = &jb->slots[i];
            if (s->ext < 0) continue;
            if (s->ext < floor_ext) {
                s->ext = -1;
                jb->buffered--;
                jb->dropped_overflow++;
            } else if (s->ext < lowest) {
                lowest = s->ext;
            }
        }
        jb->next_ext = lowest;
        jb->advanced = 1;
        slot = &jb->slots[ext % cap];
    }
    slot->ext = ext;
    slot->ts = ts;
    slot->len = (uint16_t)len;
    if (len) memcpy(slot->data, payload, len);
    jb->buffered++;
    if (ext > jb->max_ext) jb->max_ext = ext;
    /* RFC 3550 A.8: interarrival jitter in timestamp units, integer form. */
    uint32_t arrival_ts = (uint32_t)(uint64_t)(int64_t)floor(arrival * (double)jb->clock_rate);
    uint32_t transit = arrival_ts - ts;
    if (jb->have_transit) {
        int64_t d = (int32_t)(transit - jb->last_transit);
        if (d < 0) d = -d;
        jb->jitter16 += d - ((jb->jitter16 + 8) >> 4);
        jb_update_target(jb);
    }
    jb->have_transit = 1;
    jb->last_transit = transit;
    return JB_OK;
}

int rv_jb_pop(rv_jb_t *jb, uint8_t *out, int *out_len, uint32_t *out_ts)
{
    *out_len = 0;
    *out_ts = 0;
    if (!jb->started) return JB_EMPTY;
    int64_t cap = jb->capacity;
    if (!jb->playing) {
        if (jb->buffered > 0 && jb->max_ext - jb->next_ext + 1 >= jb->target)
            jb->playing = 1;
        else
            return JB_EMPTY;
    }
    if (jb->max_ext - jb->next_ext + 1 > jb->target + JB_ADAPT_SLACK) {
        /* Delay above target: skip one frame to shrink it. */
        rv_jb_slot_t *s = &jb->slots[jb->next_ext % cap];
        if (s->ext == jb->next_ext) {
            s->ext = -1;
            jb->buffered--;
            jb->dropped_adapt++;
        }
        jb->next_ext++;
        jb->advanced = 1;
    }
    if (jb->buffered == 0) {
        jb->playing = 0;  /* underrun: re-buffer up to the target before playing again */
        return JB_EMPTY;
    }
    rv_jb_slot_t *slot = &jb->slots[jb->next_ext % cap];
    jb->next_ext++;
    jb->advanced = 1;
    if (slot->ext == jb->next_ext - 1) {
        slot->ext = -1;
        jb->buffered--;
        jb->played++;
        if (slot->len) memcpy(out, slot->data, slot->len);
        *out_len = slot->len;
        *out_ts = slot->ts;
        return JB_FRAME;
    }
    jb->concealed++;
    return JB_LOST;
}

/* The payload of the frame the next pop will play, when it has arrived: its length (and
 * the bytes in out), else -1. Read-only. After a LOST pop this is the packet after the
 * lost one, whose in-band FEC (Opus LBRR) can rebuild it. */
int rv_jb_peek(const rv_jb_t *jb, uint8_t *out)
{
    if (!jb->started || jb->capacity <= 0) return -1;
    const rv_jb_slot_t *slot = &jb->slots[jb->next_ext % jb->capacity];
    if (slot->ext != jb->next_ext) return -1;
    if (slot->len) memcpy(out, slot->data, slot->len);
    return slot->len;
}

void rv_jb_insert_batch(rv_jb_t *jb, size_t n, const uint16_t *seqs, const uint32_t *tss,
                        const uint8_t *payloads, size_t stride, const uint16_t *lens,
                        const double *arrivals, int8_t *results)
{
    for (size_t i = 0; i < n; i++)
        results[i] = (int8_t)rv_jb_insert(jb, seqs[i], tss[i], payloads + i * stride, lens[i],
                                          arrivals[i]);
}

void rv_jb_pop_batch(rv_jb_t *jb, size_t n, uint8_t *out, size_t stride, int *out_lens,
                     int8_t *statuses)
{
    uint32_t ts;
    for (size_t i = 0; i < n; i++)
        statuses[i] = (int8_t)rv_jb_pop(jb, out + i * stride, &out_lens[i], &ts);
}

void rv_jb_pop_many(rv_jb_t **jbs, size_t n, uint8_t *out, size_t stride, int *out_lens,
                    int8_t *statuses)
{
    uint32_t ts;
    for (size_t i = 0; i < n; i++)
        statuses[i] = (int8_t)rv_jb_pop(jbs[i], out + i * stride, &out_lens[i], &ts);
}

void rv_jb_insert_many(rv_jb_t **jbs, size_t n, const uint16_t *seqs, const uint32_t *tss,
                       const uint8_t *payloads, size_t stride, const uint16_t *lens,
                       const double *arrivals, int8_t *results)
{
    for (size_t i = 0; i < n; i++)
        results[i] = (int8_t)rv_jb_insert(jbs[i], seqs[i], tss[i], payloads + i * stride, lens[i],
                                          arrivals[i]);
}
