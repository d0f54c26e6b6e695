/* crc32.c -- CRC-32, the same values as zlib's crc32(), slice-by-8: eight table lookups per
 * 8 input bytes instead of one per byte (a 60 MB weight file is checked in ~1/5 of the
 * time of the byte-at-a-time loop). */
#include "crc32.h"


/* table[0] is the classic byte table; table[k][b] is the CRC of byte b followed by k zero
 * bytes, so 8 bytes fold in as 8 independent lookups. */
static uint32_t table[8][256];
static int table_ready;

static void make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            table[k][i] = table[0][table[k - 1][i] & 0xFF] ^ (table[k - 1][i] >> 8);
    table_ready = 1;
}

/* Returns the CRC-32 of buf[0..n) continuing from crc. The 8-byte step reads the input as
 * two little-endian words, so it is written for byte order, not assumed from the host. */
uint32_t nb_crc32(uint32_t crc, const void *buf, size_t n) {
    /* The table is a pure function of nothing; a benign race would write equal values,
     * but we build it eagerly from a constructor to keep threads out of it entirely. */
    if (!table_ready) make_table();
    const unsigned char *p = buf;
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^
            ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) crc = table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

__attribute__((constructor)) static void crc32_init(void) { make_table(); }
