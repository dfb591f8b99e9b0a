// SPDX-License-Identifier: MIT
/* blanketctl output helpers (see output.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

const char *fmt_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	unsigned int u = 0;

	if (v < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", v);
		return buf;
	}
	d /= 1024;
	while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

const char *fmt_ns(uint64_t ns, char *buf, size_t len)
{
	if (ns == 0)
		snprintf(buf, len, "-");
	else if (ns < 1000)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	return buf;
}

const char *fmt_uptime(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000, m = s / 60, h = m / 60, d = h / 24;

	if (d)
		snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h", d, h % 24);
	else if (h)
		snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m", h, m % 60);
	else if (m)
		snprintf(buf, len, "%" PRIu64 "m %" PRIu64 "s", m, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
	return buf;
}

/* Disk letters: a..z, aa..zz, ... as Linux names them. */
static void disk_letters(unsigned int disk, char *out, size_t len)
{
	char tmp[8];
	int n = 0;

	disk++;
	while (disk && n < (int)sizeof(tmp)) {
		disk--;
		tmp[n++] = (char)('a' + disk % 26);
		disk /= 26;
	}
	for (int i = 0; i < n && (size_t)i + 1 < len; i++)
		out[i] = tmp[n - 1 - i];
	out[(size_t)n < len ? (size_t)n : len - 1] = '\0';
}

const char *vbd_name(uint32_t devid, char *buf, size_t len)
{
	unsigned int major = devid >> 8, disk, part;
	const char *prefix;
	char letters[8];

	if (devid & (1U << 28)) {
		prefix = "xvd";
		disk = (devid >> 8) & 0xfffff;
		part = devid & 0xff;
	} else if (major == 202) {
		prefix = "xvd";
		disk = (devid >> 4) & 0xf;
		part = devid & 0xf;
	} else if (major == 3 || major == 22) {
		prefix = "hd";
		disk = (devid >> 6 & 1) + (major == 22 ? 2 : 0);
		part = devid & 0x3f;
	} else if (major == 8) {
		prefix = "sd";
		disk = (devid >> 4) & 0xf;
		part = devid & 0xf;
	} else {
		buf[0] = '\0';
		return buf;
	}
	disk_letters(disk, letters, sizeof(letters));
	if (part)
		snprintf(buf, len, "%s%s%u", prefix, letters, part);
	else
		snprintf(buf, len, "%s%s", prefix, letters);
	return buf;
}

/* Length of a valid UTF-8 sequence at @s, 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

void json_string(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', out);
	while (*s) {
		size_t n;

		if (*s == '"' || *s == '\\') {
			fprintf(out, "\\%c", *s++);
			continue;
		}
		if (*s < 0x20 || *s == 0x7f) {
			fprintf(out, "\\u%04x", *s++);
			continue;
		}
		n = utf8_len(s);
		if (!n) {
			fputs("\\ufffd", out);
			s++;
			continue;
		}
		fwrite(s, 1, n, out);
		s += n;
	}
	fputc('"', out);
}

struct table {
	unsigned int ncols;
	unsigned int nrows;
	unsigned int cap;
	char **cells; /* nrows * ncols */
	bool left[TABLE_MAX_COLS];
};

struct table *table_new(unsigned int ncols)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->left[0] = true;
	return t;
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < (size_t)t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void table_left(struct table *t, unsigned int col)
{
	if (col < sizeof(t->left))
		t->left[col] = true;
}

int table_row(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		unsigned int cap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->cells, sizeof(*n) * cap * t->ncols);

		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->cap = cap;
	}
	for (unsigned int c = 0; c < t->ncols; c++) {
		char *s = strdup(cells[c] ? cells[c] : "");

		if (!s)
			return -ENOMEM;
		/* Text from the daemon (paths, errors) must not drive the terminal. */
		for (char *p = s; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		t->cells[(size_t)t->nrows * t->ncols + c] = s;
	}
	t->nrows++;
	return 0;
}

void table_print(const struct table *t, FILE *out)
{
	size_t width[TABLE_MAX_COLS] = { 0 };
	unsigned int ncols = t->ncols < TABLE_MAX_COLS ? t->ncols : TABLE_MAX_COLS;

	for (unsigned int r = 0; r < t->nrows; r++)
		for (unsigned int c = 0; c < ncols; c++) {
			size_t w = strlen(t->cells[(size_t)r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	for (unsigned int r = 0; r < t->nrows; r++) {
		char line[4096];
		size_t pos = 0;

		for (unsigned int c = 0; c < ncols; c++) {
			const char *s = t->cells[(size_t)r * t->ncols + c];
			bool last = c + 1 == ncols;
			int n;

			if (t->left[c])
				n = snprintf(line + pos, sizeof(line) - pos, "%-*s%s",
					     (int)width[c], s, last ? "" : "  ");
			else
				n = snprintf(line + pos, sizeof(line) - pos, "%*s%s", (int)width[c],
					     s, last ? "" : "  ");
			if (n < 0 || (size_t)n >= sizeof(line) - pos) {
				pos = sizeof(line) - 1;
				break;
			}
			pos += (size_t)n;
		}
		while (pos && line[pos - 1] == ' ')
			pos--;
		line[pos] = '\0';
		fprintf(out, "%s\n", line);
	}
}
