/* json_stream.c: element-at-a-time reading of a huge JSON array (see json_stream.h).
 *
 * Why not jansson alone: json_load_file of the 330 MB VQA v2 train annotations builds a
 * tree of ~5 M small objects (several GB). Here the scanner only finds element
 * boundaries (strings with escapes, nesting); jansson parses one element at a time, and
 * validates it fully. Skipped top-level members (e.g. "info", "license") are checked
 * lightly: strings, bracket matching and allowed bytes, not comma/colon placement.
 * Whitespace is JSON's: space, \t, \n, \r. */
#include "io/json_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/file.h"

/* Pages behind the scan position are dropped once this many bytes have accumulated. */
#define JS_DROP_BYTES ((size_t)8 << 20)

typedef struct Map {
    const char *path;
    const char *data;
    size_t len;
    size_t dropped;  /* bytes [0, dropped) released with MADV_DONTNEED */
} Map;

struct JsonStream {
    char *path;
    FileMap fm;          /* mapping of the whole file */
    Map m;               /* its bytes, as text */
    size_t pos;          /* scan position */
    size_t elem_off;     /* start of the element last returned */
    int64_t index;       /* index of the element last returned; -1 before the first */
    int in_object;       /* the array is a member of the top-level object */
    int state;           /* 0: before first element, 1: after an element, 2: done */
};

void js_line_col(const char *data, size_t len, size_t off, int64_t *line, int64_t *col) {
    int64_t l = 1;
    size_t last_nl = 0;
    int seen = 0;
    if (off > len) off = len;
    for (size_t i = 0; i < off; i++) {
        if (data[i] == '\n') {
            l++;
            last_nl = i;
            seen = 1;
        }
    }
    *line = l;
    *col = (int64_t)(seen ? off - last_nl : off + 1);
}

static void where(const Map *m, size_t off, char *buf, size_t cap) {
    int64_t line, col;
    js_line_col(m->data, m->len, off, &line, &col);
    snprintf(buf, cap, "%s:%lld:%lld (byte %zu)", m->path, (long long)line, (long long)col, off);
}

static int fail_at(const Map *m, size_t off, Err *err, const char *what) {
    char w[1200];
    where(m, off, w, sizeof w);
    return err_set(err, "%s: %s", w, what);
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const Map *m, size_t p) {
    while (p < m->len && is_ws(m->data[p])) p++;
    return p;
}

/* Releases the pages before p once JS_DROP_BYTES have accumulated: a file mapping's
 * resident pages count in RSS, and the scan never goes back (messages that need
 * line:col fault the pages in again). */
static void maybe_drop(Map *m, size_t p) {
    if (p - m->dropped < JS_DROP_BYTES) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t upto = p / page * page;
    if (upto > m->dropped) {
        madvise((char *)m->data + m->dropped, upto - m->dropped, MADV_DONTNEED);
        m->dropped = upto;
    }
}

/* p at the opening quote; returns 0 and *end just past the closing quote. */
static int scan_string(const Map *m, size_t p, size_t *end, Err *err) {
    size_t start = p++;
    while (p < m->len) {
        unsigned char c = (unsigned char)m->data[p];
        if (c == '"') {
            *end = p + 1;
            return 0;
        }
        if (c == '\\') {
            if (p + 1 >= m->len) break;
            p += 2;
            continue;
        }
        if (c < 0x20) return fail_at(m, p, err, "control character inside a string (escape it)");
        p++;
    }
    return fail_at(m, start, err, "unterminated string");
}

static int scalar_byte(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' ||
           c == '-' || c == '.';
}

/* p at the first byte of a value; *end just past it. Containers are matched with a
 * stack of their opening brackets. */
static int skip_value(Map *m, size_t p, size_t *end, Err *err) {
    if (p >= m->len) return fail_at(m, p, err, "unexpected end of file, expected a value");
    char c = m->data[p];
    if (c == '"') return scan_string(m, p, end, err);
    if (c != '{' && c != '[') {
        size_t q = p;
        while (q < m->len && scalar_byte(m->data[q])) q++;
        if (q == p) {
            char msg[80];
            snprintf(msg, sizeof msg, "unexpected character '%c' (0x%02x), expected a value",
                     (c >= 0x20 && c < 0x7f) ? c : '?', (unsigned char)c);
            return fail_at(m, p, err, msg);
        }
        *end = q;
        return 0;
    }
    size_t cap = 64, depth = 0;
    char *stack = malloc(cap);
    size_t *opened = malloc(cap * sizeof *opened);
    if (!stack || !opened) {
        free(stack);
        free(opened);
        return err_set(err, "%s: out of memory scanning JSON", m->path);
    }
    int rc = -1;
    while (p < m->len) {
        c = m->data[p];
        if (c == '{' || c == '[') {
            if (depth == cap) {
                cap *= 2;
                char *ns = realloc(stack, cap);
                if (ns) stack = ns;
                size_t *no = realloc(opened, cap * sizeof *no);
                if (no) opened = no;
                if (!ns || !no) {
                    err_set(err, "%s: out of memory scanning JSON", m->path);
                    goto out;
                }
            }
            opened[depth] = p;
            stack[depth++] = c;
            p++;
        } else if (c == '}' || c == ']') {
            char want = c == '}' ? '{' : '[';
            if (stack[depth - 1] != want) {
                char msg[120];
                snprintf(msg, sizeof msg, "'%c' closes the '%c' opened at byte %zu", c,
                         stack[depth - 1], opened[depth - 1]);
                fail_at(m, p, err, msg);
                goto out;
            }
            p++;
            if (--depth == 0) {
                *end = p;
                rc = 0;
                goto out;
            }
        } else if (c == '"') {
            if (scan_string(m, p, &p, err)) goto out;
            maybe_drop(m, p);
        } else if (is_ws(c) || c == ',' || c == ':' || scalar_byte(c)) {
            p++;
        } else {
            char msg[80];
            snprintf(msg, sizeof msg, "unexpected character '%c' (0x%02x)",
                     (c >= 0x20 && c < 0x7f) ? c : '?', (unsigned char)c);
            fail_at(m, p, err, msg);
            goto out;
        }
    }
    {
        char msg[120];
        snprintf(msg, sizeof msg, "unexpected end of file: '%c' opened at byte %zu is never closed",
                 stack[depth - 1], opened[depth - 1]);
        fail_at(m, m->len, err, msg);
    }
out:
    free(stack);
    free(opened);
    return rc;
}

/* Offset inside buf of a jansson parse error. jansson reports the position after the
 * token it stopped on ("... near 'TOKEN'"); point at the token's start instead, except
 * for undecodable bytes, where the position is already the bad byte. */
static size_t jansson_error_pos(const char *buf, size_t n, const json_error_t *je) {
    size_t pos = je->position > 0 ? (size_t)je->position : 0;
    if (pos > n) pos = n;
    const char *near = strstr(je->text, "near '");
    if (!near || strncmp(je->text, "unable to decode byte", 21) == 0) return pos;
    near += 6;
    const char *q = strrchr(near, '\'');
    size_t tl = q ? (size_t)(q - near) : 0;
    if (tl && tl <= pos && memcmp(buf + pos - tl, near, tl) == 0) pos -= tl;
    return pos;
}

/* Compares the string token [p, end) (quotes included) with name. Keys with escapes
 * are decoded by jansson. */
static int key_equals(const Map *m, size_t p, size_t end, const char *name) {
    const char *s = m->data + p + 1;
    size_t n = end - p - 2;
    if (!memchr(s, '\\', n)) return strlen(name) == n && memcmp(s, name, n) == 0;
    json_t *k = json_loadb(m->data + p, end - p, JSON_DECODE_ANY, NULL);
    int eq = k && json_is_string(k) && strcmp(json_string_value(k), name) == 0;
    json_decref(k);
    return eq;
}

/* p just after '{' or after a member's value: reads "," or "}". Returns 1 when another
 * member follows (p after the comma), 0 at '}' (p after it), -1 on error. */
static int next_member(const Map *m, size_t *p, Err *err) {
    size_t q = skip_ws(m, *p);
    if (q < m->len && m->data[q] == ',') {
        *p = q + 1;
        return 1;
    }
    if (q < m->len && m->data[q] == '}') {
        *p = q + 1;
        return 0;
    }
    return fail_at(m, q, err, q < m->len ? "expected ',' or '}' after an object member"
                                          : "unexpected end of file inside the top-level object");
}

/* Reads a member's key and colon starting at p (after '{' or ','); p ends on the value. */
static int read_key(Map *m, size_t *p, size_t *ks, size_t *ke, Err *err) {
    size_t q = skip_ws(m, *p);
    if (q >= m->len || m->data[q] != '"')
        return fail_at(m, q, err, "expected a member name (a string)");
    *ks = q;
    if (scan_string(m, q, ke, err)) return -1;
    q = skip_ws(m, *ke);
    if (q >= m->len || m->data[q] != ':') return fail_at(m, q, err, "expected ':' after a member name");
    *p = skip_ws(m, q + 1);
    return 0;
}

static int check_trailing(const Map *m, size_t p, Err *err) {
    p = skip_ws(m, p);
    if (p != m->len) return fail_at(m, p, err, "unexpected data after the top-level value");
    return 0;
}

/* Positions *vpos on the value of the named top-level member. 1 found, 0 absent, -1 error. */
static int find_member(Map *m, const char *member, size_t *vpos, Err *err) {
    size_t p = skip_ws(m, 0);
    if (p >= m->len) return fail_at(m, p, err, "empty file, expected a JSON object");
    if (m->data[p] != '{') {
        char msg[200];
        snprintf(msg, sizeof msg, "expected the top level to be an object holding \"%s\", found %s",
                 member, m->data[p] == '[' ? "a list" : "something else");
        return fail_at(m, p, err, msg);
    }
    p++;
    size_t q = skip_ws(m, p);
    if (q < m->len && m->data[q] == '}') return check_trailing(m, q + 1, err) ? -1 : 0;
    for (;;) {
        size_t ks, ke;
        if (read_key(m, &p, &ks, &ke, err)) return -1;
        if (key_equals(m, ks, ke, member)) {
            *vpos = p;
            return 1;
        }
        if (skip_value(m, p, &p, err)) return -1;
        int r = next_member(m, &p, err);
        if (r < 0) return -1;
        if (r == 0) return check_trailing(m, p, err) ? -1 : 0;
    }
}

/* The file mapped for a front-to-back scan; an empty file is an error (no JSON in it). */
static int map_json(FileMap *fm, const char *path, Err *err) {
    if (file_map(fm, path, NULL, FILE_MAP_SEQUENTIAL, err) != 0) return -1;
    if (fm->size == 0) return err_set(err, "%s: empty file, expected JSON", path);
    return 0;
}

int js_open(JsonStream **out, const char *path, const char *member, Err *err) {
    *out = NULL;
    JsonStream *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return err_set(err, "%s: out of memory", path);
    }
    s->index = -1;
    s->m.path = s->path;
    if (map_json(&s->fm, path, err) != 0) {
        js_close(s);
        return -1;
    }
    s->m.data = (const char *)s->fm.data;
    s->m.len = s->fm.size;
    Map *m = &s->m;
    size_t p;
    if (member) {
        int r = find_member(m, member, &p, err);
        if (r <= 0) {
            if (r == 0) err_set(err, "%s: the top-level object has no member \"%s\"", path, member);
            js_close(s);
            return -1;
        }
        s->in_object = 1;
    } else {
        p = skip_ws(m, 0);
    }
    if (p >= m->len || m->data[p] != '[') {
        char msg[200];
        if (member)
            snprintf(msg, sizeof msg, "member \"%s\" must be a list", member);
        else
            snprintf(msg, sizeof msg, "expected the top level to be a list");
        fail_at(m, p, err, msg);
        js_close(s);
        return -1;
    }
    s->pos = p + 1;
    *out = s;
    return 0;
}

/* After the closing ']': the rest of the top-level object (skipped lightly), then EOF. */
static int finish(JsonStream *s, Err *err) {
    Map *m = &s->m;
    size_t p = s->pos;
    if (s->in_object) {
        for (;;) {
            int r = next_member(m, &p, err);
            if (r < 0) return -1;
            if (r == 0) break;
            size_t ks, ke;
            if (read_key(m, &p, &ks, &ke, err) || skip_value(m, p, &p, err)) return -1;
        }
    }
    return check_trailing(m, p, err);
}

int js_next(JsonStream *s, json_t **elem, Err *err) {
    *elem = NULL;
    if (s->state == 2) return 0;
    Map *m = &s->m;
    size_t p = skip_ws(m, s->pos);
    if (p >= m->len) return fail_at(m, p, err, "unexpected end of file inside a list");
    if (s->state == 1) {
        if (m->data[p] == ',') {
            p = skip_ws(m, p + 1);
            if (p < m->len && m->data[p] == ']')
                return fail_at(m, p, err, "trailing comma before ']'");
        } else if (m->data[p] != ']') {
            return fail_at(m, p, err, "expected ',' or ']' after a list element");
        }
    }
    if (p < m->len && m->data[p] == ']') {
        s->pos = p + 1;
        s->state = 2;
        return finish(s, err) ? -1 : 0;
    }
    size_t end;
    if (skip_value(m, p, &end, err)) return -1;
    json_error_t je;
    json_t *v = json_loadb(m->data + p, end - p, JSON_DECODE_ANY, &je);
    if (!v) {
        size_t off = p + jansson_error_pos(m->data + p, end - p, &je);
        char msg[300];
        snprintf(msg, sizeof msg, "in element %lld: %s", (long long)(s->index + 1), je.text);
        return fail_at(m, off, err, msg);
    }
    s->elem_off = p;
    s->pos = end;
    s->index++;
    s->state = 1;
    maybe_drop(m, p);
    *elem = v;
    return 1;
}

int64_t js_index(const JsonStream *s) { return s->index; }
size_t js_offset(const JsonStream *s) { return s->elem_off; }
const char *js_path(const JsonStream *s) { return s->path; }

void js_where(const JsonStream *s, size_t offset, char *buf, size_t cap) { where(&s->m, offset, buf, cap); }

void js_close(JsonStream *s) {
    if (!s) return;
    file_unmap(&s->fm);
    free(s->path);
    free(s);
}

int js_peek_top(const char *path, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno(err, "%s: cannot open", path);
    int c;
    while ((c = fgetc(f)) != EOF && is_ws((char)c)) {
    }
    fclose(f);
    if (c == EOF) return err_set(err, "%s: empty file, expected JSON", path);
    return c;
}

int js_get_member(const char *path, const char *member, json_t **value, Err *err) {
    *value = NULL;
    FileMap fm;
    if (map_json(&fm, path, err) != 0) return -1;
    const char *data = (const char *)fm.data;
    Map m = {path, data, fm.size, 0};
    size_t p, end;
    int r = find_member(&m, member, &p, err);
    if (r == 1) {
        if (skip_value(&m, p, &end, err)) {
            r = -1;
        } else {
            json_error_t je;
            *value = json_loadb(data + p, end - p, JSON_DECODE_ANY, &je);
            if (!*value) {
                char msg[300];
                snprintf(msg, sizeof msg, "in member \"%s\": %s", member, je.text);
                fail_at(&m, p + jansson_error_pos(data + p, end - p, &je), err, msg);
                r = -1;
            }
        }
    }
    file_unmap(&fm);
    return r;
}

int js_load_file(json_t **out, const char *path, Err *err) {
    json_error_t je;
    *out = json_load_file(path, JSON_DECODE_ANY, &je);
    if (*out) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_errno(err, "%s: cannot open", path);
    fclose(f);
    return err_set(err, "%s:%d:%d (byte %d): %s", path, je.line, je.column, je.position, je.text);
}
