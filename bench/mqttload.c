/*
 * mqttload: the request/response load generator of the benchmarks, in C.
 *
 * Same behaviour and output as load() in bench/loadgen.py (the reference and the
 * fallback), at a fraction of its CPU: on a 2-core box shared with the broker, Redis and
 * the server being measured, every cycle the generator spends distorts the measurement.
 *
 *   mqttload PORT TOPIC SECONDS INFLIGHT WARMUP [--expect TEXT]
 *            [--call TYPE TEMPLATE]...
 *
 * INFLIGHT requesters ("slots") each repeat the sequence of calls (default: one greeting)
 * on TOPIC, where {slot} becomes the slot's number. A request is a QoS 1 MQTT v5 PUBLISH
 * carrying the CloudEvent attributes as user properties, a response topic and 8 bytes of
 * correlation data; TEMPLATE is a Python str.format template where {n} is the iteration's
 * id (shared by all calls of one pass through the sequence) and {{ }} are literal braces.
 * A reply sends the slot's next request right away; a reply to call 0 that does not
 * contain TEXT (spaces removed) counts as failed; a request unanswered for 10 s as lost.
 * With WARMUP=1 a 1 s warm-up runs first (not measured). Prints one JSON line: requests,
 * lost, failed, rps, p50_ms, p90_ms, p99_ms, p999_ms, max_ms. Exits non-zero with a
 * message on stderr when the connection fails or the broker refuses CONNECT/SUBSCRIBE.
 *
 * One thread, one socket, poll(); everything produced while handling one read leaves in
 * one write. Build: cc -O2 -Wall -Wextra -o mqttload mqttload.c
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GREETING_TYPE "com.github.aschamberger.microdcs.greeting.v1"
#define GREETING_TEMPLATE "{{\"name\": \"bench\"}}"
#define LOST_AFTER 10.0      /* seconds without a reply */
#define SWEEP_EVERY 0.5      /* seconds between sweeps for lost requests */
#define KEEPALIVE 30         /* seconds, announced in CONNECT */
#define HANDSHAKE_TIMEOUT 10.0
#ifndef READ_CHUNK
#define READ_CHUNK 262144 /* bytes per read (smaller in tests: packets split across reads) */
#endif
#define MAX_PACKET (64u << 20)

/* ---- small helpers ------------------------------------------------------------------ */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("mqttload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) die("out of memory");
    return q;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    unsigned char *p;
    size_t len, cap;
} Buf;

static void buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void put(Buf *b, const void *data, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_byte(Buf *b, unsigned v) {
    buf_reserve(b, 1);
    b->p[b->len++] = (unsigned char)v;
}

static void put_u16(Buf *b, unsigned v) {
    put_byte(b, (v >> 8) & 0xFF);
    put_byte(b, v & 0xFF);
}

static void put_u32(Buf *b, uint32_t v) {
    put_u16(b, v >> 16);
    put_u16(b, v & 0xFFFF);
}

static void put_varint(Buf *b, size_t v) {
    if (v > 268435455u) die("packet too large for MQTT");
    do {
        unsigned byte = v & 0x7F;
        v >>= 7;
        put_byte(b, v ? byte | 0x80 : byte);
    } while (v);
}

static void put_str(Buf *b, const char *s, size_t n) {
    if (n > 0xFFFF) die("MQTT strings are limited to 65535 bytes");
    put_u16(b, (unsigned)n);
    put(b, s, n);
}

static size_t varint_size(size_t v) {
    size_t n = 1;
    while (v >= 128) {
        v >>= 7;
        n++;
    }
    return n;
}

/* ---- templates (Python str.format with one named field) ----------------------------- */

/* lit[0] field lit[1] field ... lit[holes]: the literals with {{ and }} already unescaped. */
typedef struct {
    char **lit;
    size_t *len;
    int holes;
} Template;

static Template parse_template(const char *text, const char *field, const char *what) {
    Template t = {0};
    Buf cur = {0};
    size_t flen = strlen(field);
    const char *s = text;
    for (;;) {
        if (*s == '\0' || (*s == '{' && s[1] != '{')) {
            t.lit = xrealloc(t.lit, sizeof(char *) * (size_t)(t.holes + 1));
            t.len = xrealloc(t.len, sizeof(size_t) * (size_t)(t.holes + 1));
            put_byte(&cur, 0);
            t.lit[t.holes] = (char *)cur.p;
            t.len[t.holes] = cur.len - 1;
            cur = (Buf){0};
            if (*s == '\0') break;
            if (strncmp(s + 1, field, flen) != 0 || s[1 + flen] != '}')
                die("%s template %s: only {%s} may be used as a field ({{ and }} for braces)",
                    what, text, field);
            s += flen + 2;
            t.holes++;
        } else if (*s == '{' || (*s == '}' && s[1] == '}')) {
            put_byte(&cur, (unsigned char)*s);
            s += 2;
        } else if (*s == '}') {
            die("%s template %s: single '}' encountered", what, text);
        } else {
            put_byte(&cur, (unsigned char)*s++);
        }
    }
    return t;
}

static void free_template(Template *t) {
    for (int i = 0; i <= t->holes; i++) free(t->lit[i]);
    free(t->lit);
    free(t->len);
}

static void render(Buf *b, const Template *t, const char *value, size_t vlen) {
    for (int i = 0; i <= t->holes; i++) {
        put(b, t->lit[i], t->len[i]);
        if (i < t->holes) put(b, value, vlen);
    }
}

/* ---- state ---------------------------------------------------------------------------- */

typedef struct {
    const char *type;
    size_t type_len;
    Template body;
} Call;

typedef struct {
    char *topic;
    size_t topic_len;
    int step;            /* the call of the sequence in flight (or next) */
    char iteration[40];  /* "<run id>-<counter>", taken at call 0 */
    size_t iteration_len;
    double deadline;     /* the phase's end: after it the slot rests */
    int waiting;         /* a request of this slot awaits its reply */
    uint64_t key;        /* its correlation data */
    double sent;
} Slot;

/* A queued PUBLISH: the broker's Receive Maximum did not allow sending it yet. */
typedef struct Pending {
    struct Pending *next;
    Buf packet;
    size_t id_at; /* offset of the packet identifier */
} Pending;

static struct {
    int fd;
    Buf in, out;
    size_t out_off;
    double last_write, last_read;

    char run_id[9];
    char response_topic[64];
    size_t response_topic_len;
    Call *calls;
    int ncalls;
    const char *expect;
    size_t expect_len;
    Slot *slots;
    int inflight;
    uint64_t counter;
    int busy;

    /* correlation data -> slot: open addressing, linear probing, backward-shift delete */
    uint64_t *hkeys;
    int *hslots; /* -1 = empty */
    size_t hmask;

    /* outgoing QoS 1 flow control */
    unsigned char id_used[65536];
    unsigned next_id;
    unsigned outstanding;
    unsigned send_quota;
    Pending *pending_head, *pending_tail;

    double *lat;
    size_t nlat, caplat;
    long lost, failed;

    /* handshake */
    int connack_seen, suback_seen;

    Buf scratch;
} G;

/* ---- correlation table ------------------------------------------------------------- */

static size_t hslot_of(uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & G.hmask;
}

static void table_init(int inflight) {
    size_t size = 16;
    while (size < (size_t)inflight * 4) size *= 2;
    G.hmask = size - 1;
    G.hkeys = xrealloc(NULL, sizeof(uint64_t) * size);
    G.hslots = xrealloc(NULL, sizeof(int) * size);
    for (size_t i = 0; i < size; i++) G.hslots[i] = -1;
}

static void table_put(uint64_t key, int slot) {
    size_t i = hslot_of(key);
    while (G.hslots[i] >= 0) i = (i + 1) & G.hmask;
    G.hkeys[i] = key;
    G.hslots[i] = slot;
}

/* Remove key; return its slot or -1. */
static int table_pop(uint64_t key) {
    size_t i = hslot_of(key);
    while (G.hslots[i] >= 0 && G.hkeys[i] != key) i = (i + 1) & G.hmask;
    int slot = G.hslots[i];
    if (slot < 0) return -1;
    /* backward shift: move later members of the cluster into the hole when allowed */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & G.hmask;
        if (G.hslots[j] < 0) break;
        size_t home = hslot_of(G.hkeys[j]);
        /* j may move to hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            G.hkeys[hole] = G.hkeys[j];
            G.hslots[hole] = G.hslots[j];
            hole = j;
        }
    }
    G.hslots[hole] = -1;
    return slot;
}

/* ---- sending ----------------------------------------------------------------------------- */

static unsigned allocate_id(void) {
    for (int tries = 0; tries < 65535; tries++) {
        G.next_id = G.next_id % 65535 + 1;
        if (!G.id_used[G.next_id]) {
            G.id_used[G.next_id] = 1;
            return G.next_id;
        }
    }
    die("no free packet identifier: 65535 messages unacknowledged");
    return 0;
}

/* Give the PUBLISH whose packet identifier is at `at` a free one: it counts as in flight. */
static void stamp_id(unsigned char *at) {
    unsigned id = allocate_id();
    G.outstanding++;
    at[0] = (unsigned char)(id >> 8);
    at[1] = (unsigned char)(id & 0xFF);
}

static void transmit(const Buf *packet, size_t id_at) {
    size_t start = G.out.len;
    put(&G.out, packet->p, packet->len);
    stamp_id(G.out.p + start + id_at);
}

/* Send queued publishes while the broker's Receive Maximum allows. */
static void pump(void) {
    while (G.pending_head && G.outstanding < G.send_quota) {
        Pending *p = G.pending_head;
        G.pending_head = p->next;
        if (!G.pending_head) G.pending_tail = NULL;
        transmit(&p->packet, p->id_at);
        free(p->packet.p);
        free(p);
    }
}

static void put_user_property(Buf *b, const char *name, const char *value, size_t vlen) {
    put_byte(b, 0x26);
    put_str(b, name, strlen(name));
    put_str(b, value, vlen);
}

static void send_request(int k, double now) {
    Slot *slot = &G.slots[k];
    if (slot->step == 0)
        slot->iteration_len = (size_t)snprintf(slot->iteration, sizeof slot->iteration,
                                               "%s-%llu", G.run_id,
                                               (unsigned long long)G.counter++);
    const Call *call = &G.calls[slot->step];
    uint64_t n = G.counter++;
    char id[40];
    size_t id_len = (size_t)snprintf(id, sizeof id, "%s-%llu", G.run_id, (unsigned long long)n);
    unsigned char key[8];
    for (int i = 0; i < 8; i++) key[i] = (unsigned char)(n >> (56 - 8 * i));

    /* properties, then payload, in scratch; then the packet */
    Buf *s = &G.scratch;
    s->len = 0;
    put_byte(s, 0x01);
    put_byte(s, 1);
    put_byte(s, 0x03);
    put_str(s, "application/json", 16);
    put_byte(s, 0x08);
    put_str(s, G.response_topic, G.response_topic_len);
    put_byte(s, 0x09);
    put_str(s, (const char *)key, 8);
    put_user_property(s, "specversion", "1.0", 3);
    put_user_property(s, "id", id, id_len);
    put_user_property(s, "source", "bench/mes", 9);
    put_user_property(s, "type", call->type, call->type_len);
    size_t props_len = s->len;
    render(s, &call->body, slot->iteration, slot->iteration_len);
    size_t payload_len = s->len - props_len;

    if (slot->topic_len > 0xFFFF) die("topic longer than 65535 bytes");
    size_t remaining = 2 + slot->topic_len + 2 + varint_size(props_len) + props_len + payload_len;
    Pending *queued = NULL;
    Buf *b = &G.out;
    if (G.pending_head || G.outstanding >= G.send_quota) {
        queued = xrealloc(NULL, sizeof *queued);
        *queued = (Pending){0};
        b = &queued->packet;
    }
    size_t start = b->len;
    put_byte(b, 0x32); /* PUBLISH, QoS 1 */
    put_varint(b, remaining);
    put_str(b, slot->topic, slot->topic_len);
    size_t id_at = b->len - start;
    put_u16(b, 0);
    put_varint(b, props_len);
    put(b, s->p, s->len);

    slot->waiting = 1;
    slot->key = n;
    slot->sent = now;
    table_put(n, k);
    if (queued) {
        queued->id_at = id_at;
        if (G.pending_tail)
            G.pending_tail->next = queued;
        else
            G.pending_head = queued;
        G.pending_tail = queued;
    } else {
        stamp_id(b->p + start + id_at);
    }
}

/* The slot's call is over (answered or lost): the next one, or rest. */
static void advance(int k, double now) {
    Slot *slot = &G.slots[k];
    slot->step = (slot->step + 1) % G.ncalls;
    if (now < slot->deadline) {
        send_request(k, now);
        return;
    }
    G.busy--;
}

/* Write what is queued; what the socket does not take now waits for POLLOUT. */
static void flush(void) {
    while (G.out_off < G.out.len) {
        ssize_t n = send(G.fd, G.out.p + G.out_off, G.out.len - G.out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            die("connection lost: %s", strerror(errno));
        }
        G.out_off += (size_t)n;
        G.last_write = now_s();
    }
    G.out.len = G.out_off = 0;
}

/* ---- receiving --------------------------------------------------------------------------- */

static int contains(const unsigned char *hay, size_t n, const char *needle, size_t m) {
    if (m == 0) return 1;
    if (m > n) return 0;
    const unsigned char first = (unsigned char)needle[0];
    for (size_t i = 0; i + m <= n; i++) {
        const unsigned char *at = memchr(hay + i, first, n - m + 1 - i);
        if (!at) return 0;
        i = (size_t)(at - hay);
        if (memcmp(at, needle, m) == 0) return 1;
    }
    return 0;
}

/* Walk a property section at p[0..end); report correlation data / receive maximum. */
static size_t read_varint(const unsigned char *p, size_t end, size_t *pos, const char *what) {
    size_t value = 0;
    for (int i = 0; i < 4; i++) {
        if (*pos >= end) die("malformed %s: truncated variable byte integer", what);
        unsigned byte = p[(*pos)++];
        value |= (size_t)(byte & 0x7F) << (7 * i);
        if (!(byte & 0x80)) return value;
    }
    die("malformed %s: variable byte integer longer than 4 bytes", what);
    return 0;
}

typedef struct {
    const unsigned char *correlation;
    size_t correlation_len;
    long receive_maximum;
} Props;

static size_t read_properties(const unsigned char *p, size_t pos, size_t end, Props *out,
                              const char *what) {
    size_t len = read_varint(p, end, &pos, what);
    if (len > end - pos) die("malformed %s: property length exceeds packet", what);
    size_t stop = pos + len;
    out->correlation = NULL;
    out->correlation_len = 0;
    out->receive_maximum = -1;
    while (pos < stop) {
        unsigned id = p[pos++];
        size_t need;
        switch (id) {
        case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29:
        case 0x2A:
            need = 1;
            break;
        case 0x13: case 0x21: case 0x22: case 0x23:
            need = 2;
            if (pos + 2 <= stop && id == 0x21) out->receive_maximum = (p[pos] << 8) | p[pos + 1];
            break;
        case 0x02: case 0x11: case 0x18: case 0x27:
            need = 4;
            break;
        case 0x0B:
            (void)read_varint(p, stop, &pos, what);
            need = 0;
            break;
        case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1A:
        case 0x1C: case 0x1F:
            if (pos + 2 > stop) die("malformed %s: truncated property", what);
            need = 2 + (size_t)((p[pos] << 8) | p[pos + 1]);
            if (id == 0x09 && pos + need <= stop) {
                out->correlation = p + pos + 2;
                out->correlation_len = need - 2;
            }
            break;
        case 0x26:
            if (pos + 2 > stop) die("malformed %s: truncated property", what);
            need = 2 + (size_t)((p[pos] << 8) | p[pos + 1]);
            if (pos + need + 2 > stop) die("malformed %s: truncated property", what);
            need += 2 + (size_t)((p[pos + need] << 8) | p[pos + need + 1]);
            break;
        default:
            die("malformed %s: unknown property identifier 0x%02x", what, id);
            return 0;
        }
        if (need > stop - pos) die("malformed %s: property overruns its section", what);
        pos += need;
    }
    return stop;
}

static void on_publish(unsigned flags, const unsigned char *p, size_t len) {
    unsigned qos = (flags >> 1) & 3;
    if (qos == 3) die("malformed PUBLISH: QoS 3");
    if (len < 2) die("malformed PUBLISH: truncated topic");
    size_t pos = 2 + (size_t)((p[0] << 8) | p[1]);
    if (pos > len) die("malformed PUBLISH: truncated topic");
    unsigned packet_id = 0;
    if (qos) {
        if (pos + 2 > len) die("malformed PUBLISH: truncated packet identifier");
        packet_id = (p[pos] << 8) | p[pos + 1];
        pos += 2;
    }
    Props props;
    pos = read_properties(p, pos, len, &props, "PUBLISH");
    if (qos == 1) {
        unsigned char ack[4] = {0x40, 0x02, (unsigned char)(packet_id >> 8),
                                (unsigned char)(packet_id & 0xFF)};
        put(&G.out, ack, 4);
    }
    if (props.correlation_len != 8) return;
    uint64_t key = 0;
    for (int i = 0; i < 8; i++) key = (key << 8) | props.correlation[i];
    int k = table_pop(key);
    if (k < 0) return;
    double now = now_s();
    Slot *slot = &G.slots[k];
    slot->waiting = 0;
    if (G.nlat == G.caplat) {
        G.caplat = G.caplat ? G.caplat * 2 : 65536;
        G.lat = xrealloc(G.lat, sizeof(double) * G.caplat);
    }
    G.lat[G.nlat++] = now - slot->sent;
    if (slot->step == 0 && G.expect) {
        Buf *s = &G.scratch;
        s->len = 0;
        buf_reserve(s, len - pos);
        for (size_t i = pos; i < len; i++)
            if (p[i] != ' ') s->p[s->len++] = p[i];
        if (!contains(s->p, s->len, G.expect, G.expect_len)) G.failed++;
    }
    advance(k, now);
}

static void on_packet(unsigned first, const unsigned char *p, size_t len) {
    unsigned kind = first >> 4;
    switch (kind) {
    case 3: /* PUBLISH */
        on_publish(first & 0x0F, p, len);
        break;
    case 4: { /* PUBACK */
        if (len < 2) die("malformed PUBACK");
        unsigned id = (p[0] << 8) | p[1];
        if (len > 2 && p[2] >= 0x80)
            fprintf(stderr, "mqttload: broker rejected publish %u: reason 0x%02x\n", id, p[2]);
        if (G.id_used[id]) {
            G.id_used[id] = 0;
            G.outstanding--;
        }
        pump();
        break;
    }
    case 2: { /* CONNACK */
        if (len < 2) die("malformed CONNACK");
        if (p[1] != 0) die("CONNACK refused the connection: reason 0x%02x", p[1]);
        G.send_quota = 65535;
        if (len > 2) {
            Props props;
            read_properties(p, 2, len, &props, "CONNACK");
            if (props.receive_maximum > 0) G.send_quota = (unsigned)props.receive_maximum;
        }
        G.connack_seen = 1;
        break;
    }
    case 9: { /* SUBACK */
        if (len < 3) die("malformed SUBACK");
        size_t pos = 2;
        Props props;
        pos = read_properties(p, pos, len, &props, "SUBACK");
        if (pos >= len) die("SUBACK without a reason code");
        if (p[pos] >= 0x80) die("SUBACK refused the subscription: reason 0x%02x", p[pos]);
        G.id_used[(p[0] << 8) | p[1]] = 0;
        G.suback_seen = 1;
        break;
    }
    case 6: { /* PUBREL: not expected (we subscribe with QoS 1); complete it anyway */
        if (len < 2) die("malformed PUBREL");
        unsigned char comp[4] = {0x70, 0x02, p[0], p[1]};
        put(&G.out, comp, 4);
        break;
    }
    case 13: /* PINGRESP */
        break;
    case 14: /* DISCONNECT */
        die("broker sent DISCONNECT (reason 0x%02x)", len ? p[0] : 0);
        break;
    default:
        die("unexpected packet type %u from the broker", kind);
    }
}

/* Read once, handle every complete packet, send what that produced in one write. */
static void read_and_handle(void) {
    buf_reserve(&G.in, READ_CHUNK);
    ssize_t n = recv(G.fd, G.in.p + G.in.len, READ_CHUNK, 0);
    if (n == 0) die("connection closed by the broker");
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return;
        die("connection lost: %s", strerror(errno));
    }
    G.in.len += (size_t)n;
    G.last_read = now_s();
    size_t pos = 0;
    while (G.in.len - pos >= 2) {
        size_t size = 0, at = pos + 1;
        int complete = 0;
        for (int i = 0; i < 4; i++) {
            if (at >= G.in.len) break;
            unsigned byte = G.in.p[at++];
            size |= (size_t)(byte & 0x7F) << (7 * i);
            if (!(byte & 0x80)) {
                complete = 1;
                break;
            }
            if (i == 3) die("malformed packet: remaining length longer than 4 bytes");
        }
        if (!complete) break;
        if (size > MAX_PACKET) die("packet of %zu bytes over the limit", size);
        if (G.in.len - at < size) {
            buf_reserve(&G.in, at + size - G.in.len); /* the rest fits on the next read */
            break;
        }
        on_packet(G.in.p[pos], G.in.p + at, size);
        pos = at + size;
    }
    if (pos) {
        memmove(G.in.p, G.in.p + pos, G.in.len - pos);
        G.in.len -= pos;
    }
    flush();
}

/* Wait up to `timeout` seconds for the socket; read and write as it allows. */
static void io_wait(double timeout) {
    struct pollfd pfd = {.fd = G.fd, .events = POLLIN};
    if (G.out_off < G.out.len) pfd.events |= POLLOUT;
    int ms = timeout <= 0 ? 0 : (int)(timeout * 1000.0) + 1;
    int r = poll(&pfd, 1, ms);
    if (r < 0) {
        if (errno == EINTR) return;
        die("poll: %s", strerror(errno));
    }
    if (r == 0) return;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) read_and_handle();
    if (pfd.revents & POLLOUT) flush();
    if (pfd.revents & POLLNVAL) die("socket closed");
}

/* ---- lost requests, keepalive ------------------------------------------------------------- */

static double next_sweep;

static void housekeeping(void) {
    double now = now_s();
    if (now >= next_sweep) {
        next_sweep = now + SWEEP_EVERY;
        /* Give up on requests unanswered for 10 s: one sweep, not a timer per request. */
        for (int k = 0; k < G.inflight; k++) {
            Slot *slot = &G.slots[k];
            if (slot->waiting && slot->sent < now - LOST_AFTER) {
                table_pop(slot->key);
                slot->waiting = 0;
                G.lost++;
                advance(k, now);
            }
        }
    }
    if (now - G.last_read > KEEPALIVE * 1.5)
        die("broker silent for %.0f s; giving up", KEEPALIVE * 1.5);
    if (now - G.last_write > KEEPALIVE / 2.0) {
        unsigned char ping[2] = {0xC0, 0x00};
        put(&G.out, ping, 2);
    }
    flush();
}

static void run_phase(double length) {
    double deadline = now_s() + length;
    G.busy = G.inflight;
    double now = now_s();
    for (int k = 0; k < G.inflight; k++) {
        G.slots[k].deadline = deadline;
        send_request(k, now);
    }
    flush();
    while (G.busy > 0) {
        double wait = next_sweep - now_s();
        io_wait(wait < 0 ? 0 : wait);
        housekeeping();
    }
}

/* ---- connection ------------------------------------------------------------------------------ */

static void random_hex(char *out, size_t bytes) {
    unsigned char raw[32];
    if (bytes > sizeof raw) bytes = sizeof raw;
    size_t got = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        while (got < bytes) {
            ssize_t n = read(fd, raw + got, bytes - got);
            if (n <= 0) break;
            got += (size_t)n;
        }
        close(fd);
    }
    if (got < bytes) { /* no /dev/urandom: time and pid are unique enough here */
        uint64_t x = (uint64_t)(now_s() * 1e9) ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < bytes; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            raw[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", raw[i]);
}

static void handshake_wait(int *flag, const char *what) {
    double until = now_s() + HANDSHAKE_TIMEOUT;
    while (!*flag) {
        double left = until - now_s();
        if (left <= 0) die("no %s from the broker within %.0f s", what, HANDSHAKE_TIMEOUT);
        io_wait(left);
    }
}

static void connect_broker(int port) {
    G.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (G.fd < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(G.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(G.fd, F_SETFL, fcntl(G.fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(G.fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno != EINPROGRESS) die("cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
        struct pollfd pfd = {.fd = G.fd, .events = POLLOUT};
        if (poll(&pfd, 1, (int)(HANDSHAKE_TIMEOUT * 1000)) <= 0)
            die("cannot connect to 127.0.0.1:%d: timed out", port);
        int err = 0;
        socklen_t elen = sizeof err;
        getsockopt(G.fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err) die("cannot connect to 127.0.0.1:%d: %s", port, strerror(err));
    }
    G.last_read = G.last_write = now_s();

    /* CONNECT: clean start, session expiry 0, Receive Maximum max(inflight*2, 64) */
    char client_id[16] = "load-";
    random_hex(client_id + 5, 4);
    long receive_max = G.inflight * 2L > 64 ? G.inflight * 2L : 64;
    if (receive_max > 65535) receive_max = 65535;
    Buf v = {0};
    put_str(&v, "MQTT", 4);
    put_byte(&v, 5);
    put_byte(&v, 0x02);
    put_u16(&v, KEEPALIVE);
    put_varint(&v, 8);
    put_byte(&v, 0x11);
    put_u32(&v, 0);
    put_byte(&v, 0x21);
    put_u16(&v, (unsigned)receive_max);
    put_str(&v, client_id, strlen(client_id));
    put_byte(&G.out, 0x10);
    put_varint(&G.out, v.len);
    put(&G.out, v.p, v.len);
    free(v.p);
    flush();
    handshake_wait(&G.connack_seen, "CONNACK");

    /* SUBSCRIBE to the response topic, QoS 1 */
    unsigned id = allocate_id();
    Buf s = {0};
    put_u16(&s, id);
    put_byte(&s, 0);
    put_str(&s, G.response_topic, G.response_topic_len);
    put_byte(&s, 1);
    put_byte(&G.out, 0x82);
    put_varint(&G.out, s.len);
    put(&G.out, s.p, s.len);
    free(s.p);
    flush();
    handshake_wait(&G.suback_seen, "SUBACK");
}

static void disconnect_broker(void) {
    unsigned char bye[2] = {0xE0, 0x00};
    put(&G.out, bye, 2);
    double until = now_s() + 1.0;
    flush();
    while (G.out_off < G.out.len && now_s() < until) {
        struct pollfd pfd = {.fd = G.fd, .events = POLLOUT};
        poll(&pfd, 1, 100);
        flush();
    }
    shutdown(G.fd, SHUT_WR);
    close(G.fd);
}

/* ---- output ------------------------------------------------------------------------------------ */

/* A float as Python's json.dumps writes it: shortest round-trip, NaN for nan. */
static void print_float(const char *name, double x) {
    char text[40];
    if (isnan(x)) {
        snprintf(text, sizeof text, "NaN");
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(text, sizeof text, "%.*g", prec, x);
            if (strtod(text, NULL) == x) break;
        }
        if (!strpbrk(text, ".eni")) strcat(text, ".0");
    }
    printf(", \"%s\": %s", name, text);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* As load(): the sorted latencies at index int(n * q), at most the last one. */
static double quantile_ms(double q) {
    if (G.nlat == 0) return NAN;
    size_t i = (size_t)((double)G.nlat * q);
    return G.lat[i < G.nlat - 1 ? i : G.nlat - 1] * 1000;
}

static void usage(void) {
    fputs("usage: mqttload PORT TOPIC SECONDS INFLIGHT WARMUP(0|1) [--expect TEXT]\n"
          "                [--call TYPE TEMPLATE]...\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 6) usage();
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end || port <= 0 || port > 65535) usage();
    const char *topic = argv[2];
    double seconds = strtod(argv[3], &end);
    if (*end || !(seconds >= 0)) usage();
    long inflight = strtol(argv[4], &end, 10);
    if (*end || inflight < 1 || inflight > 1000000) usage();
    int warmup = strcmp(argv[5], "0") != 0 && strcmp(argv[5], "false") != 0;
    G.inflight = (int)inflight;

    for (int i = 6; i < argc; i++) {
        if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            G.expect = argv[++i];
            G.expect_len = strlen(G.expect);
        } else if (strcmp(argv[i], "--call") == 0 && i + 2 < argc) {
            G.calls = xrealloc(G.calls, sizeof(Call) * (size_t)(G.ncalls + 1));
            Call *c = &G.calls[G.ncalls++];
            c->type = argv[i + 1];
            c->type_len = strlen(c->type);
            c->body = parse_template(argv[i + 2], "n", "payload");
            i += 2;
        } else {
            usage();
        }
    }
    if (G.ncalls == 0) {
        G.calls = xrealloc(NULL, sizeof(Call));
        G.calls[0].type = GREETING_TYPE;
        G.calls[0].type_len = strlen(GREETING_TYPE);
        G.calls[0].body = parse_template(GREETING_TEMPLATE, "n", "payload");
        G.ncalls = 1;
    }

    signal(SIGPIPE, SIG_IGN);
    random_hex(G.run_id, 4);
    memcpy(G.response_topic, "bench/responses/", 16);
    random_hex(G.response_topic + 16, 16);
    G.response_topic_len = strlen(G.response_topic);

    Template topic_template = parse_template(topic, "slot", "topic");
    G.slots = xrealloc(NULL, sizeof(Slot) * (size_t)G.inflight);
    for (int k = 0; k < G.inflight; k++) {
        Slot *slot = &G.slots[k];
        *slot = (Slot){0};
        Buf b = {0};
        char number[24];
        size_t nlen = (size_t)snprintf(number, sizeof number, "%d", k);
        render(&b, &topic_template, number, nlen);
        slot->topic_len = b.len;
        put_byte(&b, 0);
        slot->topic = (char *)b.p;
    }
    free_template(&topic_template);
    table_init(G.inflight);
    G.send_quota = 65535;

    connect_broker((int)port);
    next_sweep = now_s() + SWEEP_EVERY;
    if (warmup) run_phase(1.0); /* not measured */
    G.nlat = 0;
    G.lost = G.failed = 0;
    double started = now_s();
    run_phase(seconds);
    double elapsed = now_s() - started;
    disconnect_broker();

    if (G.nlat) qsort(G.lat, G.nlat, sizeof(double), cmp_double);
    size_t n = G.nlat;
    printf("{\"requests\": %zu, \"lost\": %ld, \"failed\": %ld", n, G.lost, G.failed);
    print_float("rps", (double)n / elapsed);
    print_float("p50_ms", n ? G.lat[n / 2] * 1000 : NAN);
    print_float("p90_ms", quantile_ms(0.90));
    print_float("p99_ms", quantile_ms(0.99));
    print_float("p999_ms", quantile_ms(0.999));
    print_float("max_ms", n ? G.lat[n - 1] * 1000 : NAN);
    printf("}\n");
    fflush(stdout);
    return 0;
}
