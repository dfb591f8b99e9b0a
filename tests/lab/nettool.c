// SPDX-License-Identifier: MIT
/*
 * nettool: the lab's small network exerciser, built static and run inside the guests and in
 * dom0 (IPv4 or IPv6 numeric addresses).
 *
 * TCP data is a pattern derived from (seed, byte position in the stream), so the receiver
 * verifies every byte without a copy; both ends print the byte count and a checksum of the
 * stream. Every command prints lines starting with "NETTOOL" and exits 0 on success, 1 on any
 * error, mismatch or stall.
 *
 *   nettool server PORT [COUNT]
 *       serve push, pull and stream clients (one process per connection) until killed, or
 *       until COUNT connections were served: then exit 0 only when all of them went well
 *   nettool push HOST PORT MIB SEED
 *       send MIB MiB to the server, which verifies them and answers its count and checksum
 *   nettool pull HOST PORT MIB SEED
 *       receive MIB MiB from the server and verify them
 *   nettool stream HOST PORT SECONDS SEED [KIB_PER_S [MAX_GAP_S]]
 *       one TCP connection for SECONDS, both directions at once (KIB_PER_S each way, 0 for
 *       as fast as it goes; default 256), verified; fails on any error or when no byte arrived
 *       for MAX_GAP_S seconds (default 20). Progress line every 10 s.
 *   nettool pps-recv PORT SECONDS
 *       count UDP datagrams (from pps-send) for at most SECONDS, or until the sender's end mark
 *   nettool pps-send HOST PORT SECONDS [SIZE]
 *       send SIZE-byte UDP datagrams (default 64, at least 16) as fast as possible
 *
 * A client retries connecting for 60 s (the guest's network may still be coming up); a
 * transfer that makes no progress for 30 s fails.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "labtool.h"

#define MIB (1024ULL * 1024ULL)
#define BUF_SIZE (256U * 1024U)
#define CONNECT_RETRY_S 60
#define STALL_S 30
#define MAGIC 0x314c4f4f5454454eULL /* "NETTOOL1" little-endian */

enum op { OP_PUSH = 1, OP_PULL = 2, OP_STREAM = 3 };

/* Client -> server, all fields little-endian. */
struct hello {
	uint64_t magic;
	uint64_t op;
	uint64_t bytes; /* push/pull: stream length */
	uint64_t seed;
};

/* Server -> client after a push. */
struct verdict {
	uint64_t status; /* 0 ok, 1 pattern mismatch, 2 short */
	uint64_t bytes;
	uint64_t sum;
	uint64_t bad_pos;
};

/*
 * One direction of a patterned stream: the expected bytes, a running checksum over the stream's
 * 8-byte words (the last partial word zero-padded), and the first mismatch.
 */
struct pat {
	uint64_t seed;
	uint64_t pos;
	uint64_t sum;
	uint64_t cur; /* bytes of the word being received, little-endian */
	uint64_t bad_pos;
	int bad;
};

static void pat_init(struct pat *p, uint64_t seed)
{
	memset(p, 0, sizeof(*p));
	p->seed = seed;
	p->sum = 0xcbf29ce484222325ULL;
}

static uint64_t pat_word(const struct pat *p, uint64_t word)
{
	return lab_word(p->seed, word);
}

static void pat_fold(struct pat *p, uint64_t w)
{
	p->sum = ((p->sum << 5 | p->sum >> 59) ^ w) * 0x100000001b3ULL;
}

/* Account (and check, with @verify) @len bytes at the stream's current position. */
static void pat_take(struct pat *p, const uint8_t *buf, size_t len, int verify)
{
	size_t i = 0;

	while (i < len) {
		if (p->pos % 8 == 0 && len - i >= 8) {
			/* The bulk: whole words. */
			uint64_t w, want = pat_word(p, p->pos / 8);

			memcpy(&w, buf + i, 8);
			w = le64toh(w);
			if (verify && w != want && !p->bad) {
				unsigned int b = 0;

				while (((w ^ want) >> (8 * b) & 0xff) == 0)
					b++;
				p->bad = 1;
				p->bad_pos = p->pos + b;
			}
			pat_fold(p, w);
			p->pos += 8;
			i += 8;
			continue;
		}
		unsigned int sh = 8 * (p->pos % 8);
		uint8_t want = pat_word(p, p->pos / 8) >> sh & 0xff;

		if (verify && buf[i] != want && !p->bad) {
			p->bad = 1;
			p->bad_pos = p->pos;
		}
		p->cur |= (uint64_t)buf[i] << sh;
		p->pos++;
		i++;
		if (p->pos % 8 == 0) {
			pat_fold(p, p->cur);
			p->cur = 0;
		}
	}
}

/* The checksum of everything taken so far (the partial word padded). */
static uint64_t pat_sum(const struct pat *p)
{
	struct pat q = *p;

	if (q.pos % 8)
		pat_fold(&q, q.cur);
	return q.sum;
}

/* Fill @buf with the pattern for @len bytes from the stream's position @pos. */
static void pat_fill(const struct pat *p, uint64_t pos, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len;) {
		uint64_t w = htole64(pat_word(p, (pos + i) / 8));
		size_t skip = (pos + i) % 8;
		size_t n = 8 - skip;

		if (n > len - i)
			n = len - i;
		memcpy(buf + i, (uint8_t *)&w + skip, n);
		i += n;
	}
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return -1;
	*ret = v;
	return 0;
}

static struct addrinfo *resolve(const char *host, const char *port, int type, int passive)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = type };
	struct addrinfo *ai;
	int r;

	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		fprintf(stderr, "nettool: %s port %s: %s\n", host ? host : "*", port,
			gai_strerror(r));
		return NULL;
	}
	return ai;
}

/* Wait until @fd is ready for @ev, at most STALL_S seconds. */
static int wait_fd(int fd, short ev)
{
	struct pollfd pfd = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&pfd, 1, STALL_S * 1000);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		fprintf(stderr, "nettool: no progress for %d s\n", STALL_S);
		return -1;
	}
	return r < 0 ? -1 : 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		if (wait_fd(fd, POLLOUT))
			return -1;
		ssize_t n = write(fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			perror("nettool: write");
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Read exactly @len bytes; 1 on a clean EOF before the first byte. */
static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		if (wait_fd(fd, POLLIN))
			return -1;
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			perror("nettool: read");
			return -1;
		}
		if (n == 0) {
			if (got == 0)
				return 1;
			fprintf(stderr, "nettool: EOF after %zu of %zu bytes\n", got, len);
			return -1;
		}
		got += n;
	}
	return 0;
}

/* Send @bytes of the pattern; returns its checksum in @ret_sum. */
static int send_pattern(int fd, uint64_t seed, uint64_t bytes, uint64_t *ret_sum)
{
	static uint8_t buf[BUF_SIZE];
	struct pat p;

	pat_init(&p, seed);
	while (p.pos < bytes) {
		size_t n = bytes - p.pos < BUF_SIZE ? bytes - p.pos : BUF_SIZE;

		pat_fill(&p, p.pos, buf, n);
		if (write_all(fd, buf, n))
			return -1;
		pat_take(&p, buf, n, 0);
	}
	*ret_sum = pat_sum(&p);
	return 0;
}

/* Receive up to @bytes (or to EOF) and verify them against the pattern. */
static int recv_pattern(int fd, struct pat *p, uint64_t bytes)
{
	static uint8_t buf[BUF_SIZE];

	while (p->pos < bytes) {
		size_t want = bytes - p->pos < BUF_SIZE ? bytes - p->pos : BUF_SIZE;

		if (wait_fd(fd, POLLIN))
			return -1;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			perror("nettool: read");
			return -1;
		}
		if (n == 0)
			break;
		pat_take(p, buf, n, 1);
	}
	return 0;
}

static void peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST] = "?";

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), NULL, 0,
			    NI_NUMERICHOST);
	snprintf(buf, len, "%s", host);
}

/* --- stream: both directions at once, paced, every byte verified --- */

struct stream_stats {
	uint64_t sent_sum, recv_sum;
	uint64_t sent, recvd;
	double max_gap;
	int bad;
	uint64_t bad_pos;
};

/*
 * Run a duplex stream on @fd: send pattern @tx_seed at @kib_s (0: unpaced), verify pattern
 * @rx_seed. With @seconds > 0 (the client) stop sending after that long and half-close; else
 * (the server) send until the peer half-closes. Ends at the peer's EOF.
 */
static int stream_run(int fd, uint64_t tx_seed, uint64_t rx_seed, double seconds, uint64_t kib_s,
		      double max_gap, const char *who, struct stream_stats *st)
{
	static uint8_t txbuf[BUF_SIZE], rxbuf[BUF_SIZE];
	struct pat tx, rx;
	size_t txlen = 0, txoff = 0;
	double t0 = lab_now(), last_rx = t0, last_report = t0;
	int sending = 1, rx_open = 1;

	pat_init(&tx, tx_seed);
	pat_init(&rx, rx_seed);
	memset(st, 0, sizeof(*st));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (rx_open) {
		double t = lab_now();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t allowed = kib_s ? (uint64_t)((t - t0) * kib_s * 1024) + 16384 : UINT64_MAX;

		if (t - last_rx > st->max_gap)
			st->max_gap = t - last_rx;
		if (st->max_gap > max_gap) {
			fprintf(stderr, "nettool: %s: nothing received for %.1f s\n", who,
				st->max_gap);
			return -1;
		}
		if (t - last_report >= 10) {
			printf("NETTOOL stream %s t=%.0f sent=%" PRIu64 " recv=%" PRIu64
			       " max_gap=%.2f\n",
			       who, t - t0, tx.pos, rx.pos, st->max_gap);
			fflush(stdout);
			last_report = t;
		}
		if (sending && seconds > 0 && t - t0 >= seconds && txoff == txlen) {
			shutdown(fd, SHUT_WR);
			sending = 0;
		}
		if (sending && txoff == txlen && tx.pos < allowed) {
			txlen = allowed - tx.pos < 16384 ? allowed - tx.pos : 16384;
			pat_fill(&tx, tx.pos, txbuf, txlen);
			txoff = 0;
		}
		if (sending && txoff < txlen)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 10) < 0 && errno != EINTR) {
			perror("nettool: poll");
			return -1;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(fd, rxbuf, sizeof(rxbuf));

			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "nettool: %s: read: %s\n", who, strerror(errno));
				return -1;
			}
			if (n == 0)
				rx_open = 0;
			if (n > 0) {
				pat_take(&rx, rxbuf, n, 1);
				last_rx = lab_now();
				if (rx.bad) {
					fprintf(stderr,
						"nettool: %s: pattern mismatch at byte %" PRIu64
						"\n",
						who, rx.bad_pos);
					return -1;
				}
			}
		}
		if (sending && (pfd.revents & POLLOUT) && txoff < txlen) {
			ssize_t n = write(fd, txbuf + txoff, txlen - txoff);

			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "nettool: %s: write: %s\n", who, strerror(errno));
				return -1;
			}
			if (n > 0) {
				pat_take(&tx, txbuf + txoff, n, 0);
				txoff += n;
			}
		}
		if (!rx_open && sending) {
			/* The peer stopped: finish what is buffered and half-close too. */
			if (txoff < txlen && write_all(fd, txbuf + txoff, txlen - txoff))
				return -1;
			if (txoff < txlen)
				pat_take(&tx, txbuf + txoff, txlen - txoff, 0);
			shutdown(fd, SHUT_WR);
			sending = 0;
		}
	}
	st->sent = tx.pos;
	st->recvd = rx.pos;
	st->sent_sum = pat_sum(&tx);
	st->recv_sum = pat_sum(&rx);
	return 0;
}

static void stream_print(const char *who, const struct stream_stats *st, double secs, int ok)
{
	printf("NETTOOL stream %s sent=%" PRIu64 " sent_sum=%016" PRIx64 " recv=%" PRIu64
	       " recv_sum=%016" PRIx64 " secs=%.1f max_gap=%.2f %s\n",
	       who, st->sent, st->sent_sum, st->recvd, st->recv_sum, secs, st->max_gap,
	       ok ? "ok" : "fail");
}

/* --- server --- */

static int serve_one(int fd)
{
	struct hello h;
	char peer[NI_MAXHOST];
	uint64_t op, bytes, seed;
	double t0 = lab_now();

	peer_name(fd, peer, sizeof(peer));
	if (read_all(fd, &h, sizeof(h)) || le64toh(h.magic) != MAGIC) {
		printf("NETTOOL server from=%s bad hello\n", peer);
		return 1;
	}
	op = le64toh(h.op);
	bytes = le64toh(h.bytes);
	seed = le64toh(h.seed);
	if (op == OP_PUSH) {
		struct pat p;
		struct verdict v;

		pat_init(&p, seed);
		int r = recv_pattern(fd, &p, bytes);

		v.status = htole64(p.bad ? 1 : p.pos < bytes ? 2 : 0);
		v.bytes = htole64(p.pos);
		v.sum = htole64(pat_sum(&p));
		v.bad_pos = htole64(p.bad_pos);
		if (r == 0)
			r = write_all(fd, &v, sizeof(v));
		printf("NETTOOL server push from=%s bytes=%" PRIu64 " sum=%016" PRIx64 " %s\n",
		       peer, p.pos, pat_sum(&p), r == 0 && v.status == 0 ? "ok" : "fail");
		return r || v.status;
	}
	if (op == OP_PULL) {
		uint64_t sum = 0;
		uint8_t c;
		int r = send_pattern(fd, seed, bytes, &sum);

		/*
		 * Written is not received: wait for the client's close, so the data left in our
		 * socket buffer is delivered before we exit (and the guest perhaps powers off).
		 */
		shutdown(fd, SHUT_WR);
		if (r == 0 && read_all(fd, &c, 1) != 1) {
			fprintf(stderr, "nettool: the client did not close after the data\n");
			r = -1;
		}

		printf("NETTOOL server pull to=%s bytes=%" PRIu64 " sum=%016" PRIx64 " %s\n", peer,
		       bytes, sum, r ? "fail" : "ok");
		return r != 0;
	}
	if (op == OP_STREAM) {
		struct stream_stats st;
		/* bytes carries the client's pace and maximum gap: KiB/s << 16 | gap seconds. */
		int r = stream_run(fd, seed + 1, seed, 0, bytes >> 16, (double)(bytes & 0xffff),
				   "server", &st);

		stream_print("server", &st, lab_now() - t0, r == 0);
		return r != 0;
	}
	printf("NETTOOL server from=%s unknown op %" PRIu64 "\n", peer, op);
	return 1;
}

static int cmd_server(const char *port, uint64_t count)
{
	struct addrinfo *all = resolve(NULL, port, SOCK_STREAM, 1), *ai = all;
	int one = 1, lfd, failed = 0;
	uint64_t served = 0;

	if (!all)
		return 1;
	/* Prefer IPv6 with v4-mapped addresses: one socket for both families. */
	for (struct addrinfo *a = all; a; a = a->ai_next)
		if (a->ai_family == AF_INET6) {
			ai = a;
			break;
		}
	lfd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (lfd < 0) {
		perror("nettool: socket");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6) {
		int zero = 0;
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) || listen(lfd, 16)) {
		perror("nettool: bind/listen");
		return 1;
	}
	freeaddrinfo(all);
	/* Serving forever: nobody collects the children. */
	if (!count)
		signal(SIGCHLD, SIG_IGN);
	printf("NETTOOL server listening port=%s\n", port);
	while (!count || served < count) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("nettool: accept");
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			_exit(serve_one(fd));
		}
		if (pid < 0)
			failed = 1;
		close(fd);
		served++;
	}
	/* COUNT connections taken: the status says whether all of them went well. */
	for (int st; wait(&st) > 0;)
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			failed = 1;
	printf("NETTOOL server done connections=%" PRIu64 " %s\n", served, failed ? "fail" : "ok");
	return failed;
}

/* --- clients --- */

static int connect_to(const char *host, const char *port)
{
	struct addrinfo *ai = resolve(host, port, SOCK_STREAM, 0);
	double end = lab_now() + CONNECT_RETRY_S;
	int fd, err = 0;

	if (!ai)
		return -1;
	for (;;) {
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("nettool: socket");
			break;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			freeaddrinfo(ai);
			return fd;
		}
		err = errno;
		close(fd);
		fd = -1;
		if (lab_now() >= end)
			break;
		usleep(500000);
	}
	fprintf(stderr, "nettool: cannot connect to %s port %s: %s\n", host, port, strerror(err));
	freeaddrinfo(ai);
	return -1;
}

static int send_hello(int fd, uint64_t op, uint64_t bytes, uint64_t seed)
{
	struct hello h = {
		.magic = htole64(MAGIC),
		.op = htole64(op),
		.bytes = htole64(bytes),
		.seed = htole64(seed),
	};

	return write_all(fd, &h, sizeof(h));
}

static int cmd_push(const char *host, const char *port, uint64_t mib, uint64_t seed)
{
	uint64_t bytes = mib * MIB, sum = 0;
	struct verdict v;
	double t0, dt;
	int fd = connect_to(host, port), ok;

	if (fd < 0)
		return 1;
	t0 = lab_now();
	if (send_hello(fd, OP_PUSH, bytes, seed) || send_pattern(fd, seed, bytes, &sum))
		return 1;
	shutdown(fd, SHUT_WR);
	if (read_all(fd, &v, sizeof(v))) {
		fprintf(stderr, "nettool: no verdict from the server\n");
		return 1;
	}
	dt = lab_now() - t0;
	ok = le64toh(v.status) == 0 && le64toh(v.bytes) == bytes && le64toh(v.sum) == sum;
	printf("NETTOOL push to=%s bytes=%" PRIu64 " sum=%016" PRIx64 " peer_bytes=%" PRIu64
	       " peer_sum=%016" PRIx64 " secs=%.2f mbps=%.2f %s\n",
	       host, bytes, sum, (uint64_t)le64toh(v.bytes), (uint64_t)le64toh(v.sum), dt,
	       bytes / MIB / (dt > 0 ? dt : 1e-9), ok ? "ok" : "fail");
	if (le64toh(v.status) == 1)
		printf("NETTOOL push mismatch at byte %" PRIu64 "\n", (uint64_t)le64toh(v.bad_pos));
	close(fd);
	return !ok;
}

static int cmd_pull(const char *host, const char *port, uint64_t mib, uint64_t seed)
{
	uint64_t bytes = mib * MIB;
	struct pat p;
	double t0, dt;
	int fd = connect_to(host, port), ok;

	if (fd < 0)
		return 1;
	t0 = lab_now();
	if (send_hello(fd, OP_PULL, bytes, seed))
		return 1;
	pat_init(&p, seed);
	if (recv_pattern(fd, &p, bytes))
		return 1;
	dt = lab_now() - t0;
	ok = !p.bad && p.pos == bytes;
	printf("NETTOOL pull from=%s bytes=%" PRIu64 " sum=%016" PRIx64 " secs=%.2f mbps=%.2f %s\n",
	       host, p.pos, pat_sum(&p), dt, p.pos / MIB / (dt > 0 ? dt : 1e-9),
	       ok ? "ok" : "fail");
	if (p.bad)
		printf("NETTOOL pull mismatch at byte %" PRIu64 "\n", p.bad_pos);
	close(fd);
	return !ok;
}

static int cmd_stream(const char *host, const char *port, uint64_t secs, uint64_t seed,
		      uint64_t kib_s, uint64_t max_gap)
{
	struct stream_stats st;
	double t0;
	int fd = connect_to(host, port), r;

	if (fd < 0)
		return 1;
	if (kib_s > (1ULL << 40) || max_gap == 0 || max_gap > 0xffff) {
		fprintf(stderr, "nettool: bad pace or gap\n");
		return 1;
	}
	t0 = lab_now();
	if (send_hello(fd, OP_STREAM, kib_s << 16 | max_gap, seed))
		return 1;
	printf("NETTOOL stream client connected to=%s secs=%" PRIu64 " kib_s=%" PRIu64 "\n", host,
	       secs, kib_s);
	fflush(stdout);
	r = stream_run(fd, seed, seed + 1, secs, kib_s, max_gap, "client", &st);
	stream_print("client", &st, lab_now() - t0, r == 0);
	close(fd);
	return r != 0;
}

/* --- packets per second (UDP) --- */

#define PPS_END 0xffffffffffffffffULL

static int cmd_pps_recv(const char *port, uint64_t secs)
{
	struct addrinfo *ai = resolve(NULL, port, SOCK_DGRAM, 1);
	uint8_t buf[65536];
	uint64_t got = 0, bytes = 0, max_seq = 0, sent = 0;
	double t0 = 0, tlast = 0, end = lab_now() + secs;
	int fd, rcvbuf = 4 << 20;

	if (!ai)
		return 1;
	fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen)) {
		perror("nettool: udp bind");
		return 1;
	}
	freeaddrinfo(ai);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	printf("NETTOOL pps-recv listening port=%s\n", port);
	fflush(stdout);
	while (lab_now() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		uint64_t seq;

		if (n < 16)
			continue;
		memcpy(&seq, buf, 8);
		seq = le64toh(seq);
		if (seq == PPS_END) {
			memcpy(&sent, buf + 8, 8);
			sent = le64toh(sent);
			break;
		}
		if (!got)
			t0 = lab_now();
		tlast = lab_now();
		got++;
		bytes += n;
		if (seq > max_seq)
			max_seq = seq;
	}
	double dt = tlast - t0;
	printf("NETTOOL pps-recv packets=%" PRIu64 " bytes=%" PRIu64 " sent=%" PRIu64
	       " lost=%" PRIu64 " secs=%.2f pps=%.0f %s\n",
	       got, bytes, sent, sent > got ? sent - got : 0, dt, dt > 0 ? got / dt : 0.0,
	       got ? "ok" : "fail");
	return got == 0;
}

static int cmd_pps_send(const char *host, const char *port, uint64_t secs, uint64_t size)
{
	struct addrinfo *ai = resolve(host, port, SOCK_DGRAM, 0);
	uint8_t buf[65536] = { 0 };
	uint64_t seq = 0, errs = 0;
	double t0, dt;
	int fd;

	if (!ai)
		return 1;
	if (size < 16 || size > 1472) {
		fprintf(stderr, "nettool: SIZE must be 16..1472\n");
		return 1;
	}
	fd = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		perror("nettool: udp connect");
		return 1;
	}
	freeaddrinfo(ai);
	t0 = lab_now();
	while (lab_now() - t0 < secs) {
		for (int i = 0; i < 64; i++) {
			uint64_t le = htole64(seq);

			memcpy(buf, &le, 8);
			if (send(fd, buf, size, 0) == (ssize_t)size)
				seq++;
			else
				errs++; /* ENOBUFS / ECONNREFUSED: counted, not fatal */
		}
	}
	dt = lab_now() - t0;
	for (int i = 0; i < 10; i++) {
		uint64_t le = htole64(PPS_END), n = htole64(seq);

		memcpy(buf, &le, 8);
		memcpy(buf + 8, &n, 8);
		send(fd, buf, 16, 0);
		usleep(20000);
	}
	printf("NETTOOL pps-send to=%s packets=%" PRIu64 " size=%" PRIu64 " errors=%" PRIu64
	       " secs=%.2f pps=%.0f %s\n",
	       host, seq, size, errs, dt, seq / dt, seq ? "ok" : "fail");
	return seq == 0;
}

static void usage(FILE *f)
{
	fputs("usage: nettool server PORT [COUNT]\n"
	      "       nettool push HOST PORT MIB SEED\n"
	      "       nettool pull HOST PORT MIB SEED\n"
	      "       nettool stream HOST PORT SECONDS SEED [KIB_PER_S [MAX_GAP_S]]\n"
	      "       nettool pps-recv PORT SECONDS\n"
	      "       nettool pps-send HOST PORT SECONDS [SIZE]\n"
	      "TCP transfers carry a pattern from SEED; the receiver verifies every byte and both\n"
	      "ends print the byte count and checksum (NETTOOL lines). push/pull/stream talk to\n"
	      "'nettool server' (which exits after COUNT connections when given). stream keeps one "
	      "connection busy both ways for SECONDS (paced at\n"
	      "KIB_PER_S each way, default 256, 0 = unpaced) and fails on any error or a receive\n"
	      "gap over MAX_GAP_S (default 20). pps-send/pps-recv count small UDP datagrams.\n"
	      "Exit 0 ok, 1 failure, 2 usage.\n",
	      f);
}

int main(int argc, char **argv)
{
	uint64_t a = 0, b = 0, c = 256, d = 20;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "server") &&
	    (argc == 3 || !parse_u64(argv[3], &a)))
		return cmd_server(argv[2], a);
	if (argc == 6 && (!strcmp(argv[1], "push") || !strcmp(argv[1], "pull")) &&
	    !parse_u64(argv[4], &a) && !parse_u64(argv[5], &b))
		return (argv[1][1] == 'u' && argv[1][2] == 's' ? cmd_push
							       : cmd_pull)(argv[2], argv[3], a, b);
	if (argc >= 6 && argc <= 8 && !strcmp(argv[1], "stream") && !parse_u64(argv[4], &a) &&
	    !parse_u64(argv[5], &b) && (argc < 7 || !parse_u64(argv[6], &c)) &&
	    (argc < 8 || !parse_u64(argv[7], &d)))
		return cmd_stream(argv[2], argv[3], a, b, c, d);
	if (argc == 4 && !strcmp(argv[1], "pps-recv") && !parse_u64(argv[3], &a))
		return cmd_pps_recv(argv[2], a);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "pps-send") && !parse_u64(argv[4], &a)) {
		c = 64;
		if (argc == 6 && parse_u64(argv[5], &c))
			goto bad;
		return cmd_pps_send(argv[2], argv[3], a, c);
	}
bad:
	usage(stderr);
	return 2;
}
