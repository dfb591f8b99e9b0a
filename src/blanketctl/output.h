/* SPDX-License-Identifier: MIT */
/* blanketctl output helpers: units, aligned tables, JSON strings. */
#ifndef BLANKETCTL_OUTPUT_H
#define BLANKETCTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "0 B", "512 B", "1.5 KiB", "12.0 MiB", ... into @buf. Returns @buf. */
const char *fmt_bytes(uint64_t v, char *buf, size_t len);
/* A latency in ns: "850 ns", "12.3 us", "1.50 ms", "2.00 s"; "-" for 0 (no samples). */
const char *fmt_ns(uint64_t ns, char *buf, size_t len);
/* A duration in ms: "3d 2h", "2h 5m", "5m 3s", "12s". */
const char *fmt_uptime(uint64_t ms, char *buf, size_t len);
/* Xen virtual disk name for a vbd devid ("xvda", "xvdb3", "hdc"); "" if not decodable. */
const char *vbd_name(uint32_t devid, char *buf, size_t len);

/* Write @s as a JSON string (quoted, escaped; invalid UTF-8 becomes U+FFFD). */
void json_string(FILE *out, const char *s);

/* A table: cells are copied; first column left-aligned, others right-aligned unless marked. */
#define TABLE_MAX_COLS 24U

struct table;

struct table *table_new(unsigned int ncols);
void table_free(struct table *t);
/* Left-align column @col (text columns). */
void table_left(struct table *t, unsigned int col);
/* Append a row of ncols cells (NULL cells print empty). */
int table_row(struct table *t, const char *const *cells);
/* Print with two spaces between columns; trailing blanks trimmed. */
void table_print(const struct table *t, FILE *out);

#endif
