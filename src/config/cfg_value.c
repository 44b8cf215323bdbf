/* cfg_value.c: one key's value <-> YAML scalar text, per the key's type: parsing with
 * type and range errors, the "expected ..." descriptions, and round-trip formatting. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/cfg_table.h"

/* YAML core-schema null, only for unquoted scalars. */
static int is_null_text(const char *s) {
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static int parse_bool(const char *s, int *out) {
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
    static const char *const f[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    for (int i = 0; t[i]; i++)
        if (strcmp(s, t[i]) == 0) return *out = 1, 0;
    for (int i = 0; f[i]; i++)
        if (strcmp(s, f[i]) == 0) return *out = 0, 0;
    return -1;
}

/* A decimal number as YAML writes it: sign, digits, '.', exponent. strtod alone would also
 * take "inf", "nan" and hex floats, which are not sensible config values. */
static int parse_double(const char *s, double *out) {
    if (!*s) return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || end == s || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Integers: plain decimal, or a number written as a float that is integral ("1e5"). */
static int parse_i64(const char *s, int64_t *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*end && end != s && errno == 0) return *out = (int64_t)v, 0;
    double d;
    if (parse_double(s, &d) == 0 && d == floor(d) && fabs(d) < 9.2e18) return *out = (int64_t)d, 0;
    return -1;
}

static const char *type_word(const CfgKey *k) {
    switch (k->type) {
    case CT_INT:
    case CT_I64: return "an integer";
    case CT_FLOAT: return "a number";
    case CT_BOOL: return "true or false";
    case CT_STR: return (k->flags & (CF_IN_FILE | CF_IN_DIR)) ? "a path" : "a string";
    case CT_ENUM: return "one of";
    case CT_FREEZE: return "all, none or a list of stage names";
    }
    return "?";
}

static void fmt_bound(double v, char *buf, size_t cap) {
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%g", v);
}

void cfg_describe(const CfgKey *k, char *buf, size_t cap) {
    if (k->type == CT_ENUM) {
        size_t n = (size_t)snprintf(buf, cap, "one of: ");
        for (int i = 0; k->names[i] && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", k->names[i]);
        return;
    }
    if (k->type == CT_STR) {
        snprintf(buf, cap, "%s%s", type_word(k), (k->flags & CF_NULLABLE) ? " or null" : "");
        return;
    }
    if (k->type != CT_INT && k->type != CT_I64 && k->type != CT_FLOAT) {
        snprintf(buf, cap, "%s", type_word(k));
        return;
    }
    char lo[32], hi[32];
    fmt_bound(k->lo, lo, sizeof lo);
    fmt_bound(k->hi, hi, sizeof hi);
    int has_hi = k->hi < 2147483647.0; /* larger bounds only guard overflow: not worth saying */
    snprintf(buf, cap, "%s %s %s%s%s%s", type_word(k), (k->flags & CF_LO_OPEN) ? ">" : ">=", lo,
             has_hi ? " and " : "", has_hi ? ((k->flags & CF_HI_OPEN) ? "< " : "<= ") : "", has_hi ? hi : "");
}

void cfg_free_value(Config *c, const CfgKey *k) {
    if (k->type == CT_STR) {
        char **s = cfg_field(c, k);
        free(*s);
        *s = NULL;
    } else if (k->type == CT_FREEZE) {
        CfgFreeze *f = cfg_field(c, k);
        for (int i = 0; i < f->n; i++) free(f->trainable[i]);
        free(f->trainable);
        f->trainable = NULL;
        f->n = 0;
        f->mode = CFG_FREEZE_ALL;
    }
}

static double numeric_value(const Config *c, const CfgKey *k) {
    const void *p = cfg_cfield(c, k);
    switch (k->type) {
    case CT_INT: return (double)*(const int *)p;
    case CT_I64: return (double)*(const int64_t *)p;
    case CT_FLOAT: return *(const double *)p;
    default: return 0;
    }
}

int cfg_check_range(const Config *c, const CfgKey *k, char *why, size_t cap) {
    if (k->type == CT_ENUM) {
        int v = *(const int *)cfg_cfield(c, k), n = 0;
        while (k->names[n]) n++;
        if (v < 0 || v >= n) {
            snprintf(why, cap, "enum value %d is out of range", v);
            return -1;
        }
        return 0;
    }
    if (k->type == CT_STR) {
        if (!(k->flags & CF_NULLABLE) && !*(char *const *)cfg_cfield(c, k)) {
            snprintf(why, cap, "must not be null: expected %s", type_word(k));
            return -1;
        }
        return 0;
    }
    if (k->type != CT_INT && k->type != CT_I64 && k->type != CT_FLOAT) return 0;
    double v = numeric_value(c, k);
    int ok = ((k->flags & CF_LO_OPEN) ? v > k->lo : v >= k->lo) &&
             ((k->flags & CF_HI_OPEN) ? v < k->hi : v <= k->hi);
    if (!ok) {
        char d[160], vs[64];
        cfg_describe(k, d, sizeof d);
        cfg_format_value(c, k, vs, sizeof vs);
        snprintf(why, cap, "%s is out of range: expected %s", vs, d);
        return -1;
    }
    return 0;
}

/* Stage names are identifiers; the per-encoder vocabulary is checked by cfg_validate. */
static int valid_stage_name(const char *s) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return 1;
}

int cfg_set_freeze_list(Config *c, const CfgKey *k, const char *const *items, int n, char *why,
                        size_t cap) {
    if (n < 0 || n > 64) return snprintf(why, cap, "expected at most 64 stage names"), -1;
    for (int i = 0; i < n; i++) {
        if (!valid_stage_name(items[i])) {
            snprintf(why, cap, "\"%s\" is not a stage name: expected %s", items[i], type_word(k));
            return -1;
        }
    }
    char **list = n ? calloc((size_t)n, sizeof *list) : NULL;
    if (n && !list) return snprintf(why, cap, "out of memory"), -1;
    for (int i = 0; i < n; i++) {
        list[i] = strdup(items[i]);
        if (!list[i]) {
            for (int j = 0; j < i; j++) free(list[j]);
            free(list);
            return snprintf(why, cap, "out of memory"), -1;
        }
    }
    cfg_free_value(c, k);
    CfgFreeze *f = cfg_field(c, k);
    /* an empty list leaves nothing trainable: the same as "all" */
    f->mode = n ? CFG_FREEZE_LIST : CFG_FREEZE_ALL;
    f->trainable = list;
    f->n = n;
    return 0;
}

/* "layer3, layer4" or "[layer4]" written as one string (a YAML scalar or a --set value). */
static int set_freeze_text(Config *c, const CfgKey *k, const char *s, char *why, size_t cap) {
    CfgFreeze *f = cfg_field(c, k);
    if (strcmp(s, "all") == 0 || strcmp(s, "none") == 0) {
        cfg_free_value(c, k);
        f->mode = s[0] == 'a' ? CFG_FREEZE_ALL : CFG_FREEZE_NONE;
        return 0;
    }
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    const char *items[64];
    int n = 0;
    for (char *tok = strtok(buf, "[], \t"); tok; tok = strtok(NULL, "[], \t")) {
        if (n == 64) return snprintf(why, cap, "more than 64 stage names"), -1;
        items[n++] = tok;
    }
    if (n == 0) return snprintf(why, cap, "expected %s, got \"%s\"", type_word(k), s), -1;
    return cfg_set_freeze_list(c, k, items, n, why, cap);
}

static int enum_set(Config *c, const CfgKey *k, const char *s, char *why, size_t cap) {
    for (int i = 0; k->names[i]; i++) {
        if (strcmp(s, k->names[i]) == 0) {
            *(int *)cfg_field(c, k) = i;
            return 0;
        }
    }
    char d[200];
    cfg_describe(k, d, sizeof d);
    /* a case-insensitive match is the likeliest intent ("FP16") */
    for (int i = 0; k->names[i]; i++) {
        if (strcasecmp(s, k->names[i]) == 0) {
            snprintf(why, cap, "expected %s, got \"%s\" (did you mean \"%s\"?)", d, s, k->names[i]);
            return -1;
        }
    }
    snprintf(why, cap, "expected %s, got \"%s\"", d, s);
    return -1;
}

int cfg_set_scalar(Config *c, const CfgKey *k, const char *s, int plain, char *why, size_t cap) {
    char d[200];
    cfg_describe(k, d, sizeof d);
    int is_null = plain && is_null_text(s);
    if (is_null && !(k->type == CT_STR && (k->flags & CF_NULLABLE))) {
        snprintf(why, cap, "expected %s, got null", d);
        return -1;
    }
    switch (k->type) {
    case CT_INT:
    case CT_I64: {
        int64_t v;
        if (parse_i64(s, &v) != 0) return snprintf(why, cap, "expected %s, got \"%s\"", d, s), -1;
        if ((double)v < k->lo || (double)v > k->hi || (k->type == CT_INT && (v > 2147483647 || v < -2147483647))) {
            snprintf(why, cap, "%s is out of range: expected %s", s, d);
            return -1;
        }
        if (k->type == CT_INT)
            *(int *)cfg_field(c, k) = (int)v;
        else
            *(int64_t *)cfg_field(c, k) = v;
        break;
    }
    case CT_FLOAT: {
        double v;
        if (parse_double(s, &v) != 0) return snprintf(why, cap, "expected %s, got \"%s\"", d, s), -1;
        if (!((k->flags & CF_LO_OPEN) ? v > k->lo : v >= k->lo) || !((k->flags & CF_HI_OPEN) ? v < k->hi : v <= k->hi)) {
            snprintf(why, cap, "%s is out of range: expected %s", s, d);
            return -1;
        }
        *(double *)cfg_field(c, k) = v;
        break;
    }
    case CT_BOOL: {
        int v;
        if (parse_bool(s, &v) != 0) return snprintf(why, cap, "expected %s, got \"%s\"", d, s), -1;
        *(int *)cfg_field(c, k) = v;
        break;
    }
    case CT_STR: {
        char *v = NULL;
        if (strlen(s) > 2000) return snprintf(why, cap, "a string of %zu bytes is too long (2000 at most)", strlen(s)), -1;
        if (!is_null && !(v = strdup(s))) return snprintf(why, cap, "out of memory"), -1;
        cfg_free_value(c, k);
        *(char **)cfg_field(c, k) = v;
        break;
    }
    case CT_ENUM: return enum_set(c, k, s, why, cap);
    case CT_FREEZE: return set_freeze_text(c, k, s, why, cap);
    }
    return cfg_check_range(c, k, why, cap);
}

/* The shortest decimal that reads back to the same double (as Python's repr): plain
 * notation for exponents -5..15 ("20.0", "0.001"), else scientific ("1e-08"); a ".0" keeps
 * a whole number recognisable as a float. */
static void fmt_double(double v, char *buf, size_t cap) {
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, cap, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    snprintf(buf, cap, "%.*e", prec - 1, v);
    const char *e = strchr(buf, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    if (v != 0 && (exp10 < -5 || exp10 > 15)) return;
    int decimals = prec - 1 - exp10;
    snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, v);
    if (!strchr(buf, '.')) {
        size_t n = strlen(buf);
        if (n + 2 < cap) memcpy(buf + n, ".0", 3);
    }
}

/* YAML double-quoted scalar: escape '"', '\' and control bytes; UTF-8 passes through. */
static void fmt_string(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    if (cap < 3) return;
    buf[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 6 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", *p);
        } else {
            buf[n++] = (char)*p;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
}

void cfg_format_value(const Config *c, const CfgKey *k, char *buf, size_t cap) {
    const void *p = cfg_cfield(c, k);
    switch (k->type) {
    case CT_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case CT_I64: snprintf(buf, cap, "%" PRId64, *(const int64_t *)p); break;
    case CT_FLOAT: fmt_double(*(const double *)p, buf, cap); break;
    case CT_BOOL: snprintf(buf, cap, "%s", *(const int *)p ? "true" : "false"); break;
    case CT_STR: {
        const char *s = *(char *const *)p;
        if (s)
            fmt_string(s, buf, cap);
        else
            snprintf(buf, cap, "null");
        break;
    }
    case CT_ENUM: {
        int v = *(const int *)p, n = 0;
        while (k->names[n]) n++;
        snprintf(buf, cap, "%s", v >= 0 && v < n ? k->names[v] : "?");
        break;
    }
    case CT_FREEZE: {
        const CfgFreeze *f = p;
        if (f->mode != CFG_FREEZE_LIST) {
            snprintf(buf, cap, "%s", f->mode == CFG_FREEZE_ALL ? "all" : "none");
            break;
        }
        size_t n = (size_t)snprintf(buf, cap, "[");
        for (int i = 0; i < f->n && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", f->trainable[i]);
        if (n < cap) snprintf(buf + n, cap - n, "]");
        break;
    }
    }
}
