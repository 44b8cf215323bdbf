/* cfg_dump.c: a Config as YAML (the --dry-run output, loadable again), its hash for
 * checkpoints, value equality, the key list for configs/README.md, and small helpers
 * for the modules that read a Config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_table.h"

/* Splits "a.b.c" into at most 8 components of < 64 chars; returns the count. */
static int split_path(const char *p, char comp[8][64]) {
    int n = 0;
    while (*p && n < 8) {
        size_t len = strcspn(p, ".");
        snprintf(comp[n++], 64, "%.*s", (int)len, p);
        p += len;
        if (*p == '.') p++;
    }
    return n;
}

int cfg_dump(const Config *cfg, FILE *f) {
    char prev[8][64], cur[8][64], val[4200];
    int nprev_sec = 0;
    fprintf(f, "# vqa_train config (every key, resolved); vqa_train --print-keys documents them\n");
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        int n = split_path(k->path, cur);
        int nsec = n - 1, common = 0;
        while (common < nsec && common < nprev_sec && strcmp(cur[common], prev[common]) == 0) common++;
        for (int d = common; d < nsec; d++) fprintf(f, "%*s%s:\n", 2 * d, "", cur[d]);
        cfg_format_value(cfg, k, val, sizeof val);
        fprintf(f, "%*s%s: %s\n", 2 * nsec, "", cur[nsec], val);
        memcpy(prev, cur, sizeof prev);
        nprev_sec = nsec;
    }
    return ferror(f) ? -1 : 0;
}

char *cfg_dump_string(const Config *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int rc = cfg_dump(cfg, f);
    if (fclose(f) != 0 || rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

uint64_t cfg_hash(const Config *cfg) {
    /* FNV-1a 64 over the dump: the dump already is the canonical text of every value */
    char *s = cfg_dump_string(cfg);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    free(s);
    return h;
}

int cfg_equal(const Config *a, const Config *b) {
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        const void *pa = cfg_cfield(a, k), *pb = cfg_cfield(b, k);
        switch (k->type) {
        case CT_INT:
        case CT_BOOL:
        case CT_ENUM:
            if (*(const int *)pa != *(const int *)pb) return 0;
            break;
        case CT_I64:
            if (*(const int64_t *)pa != *(const int64_t *)pb) return 0;
            break;
        case CT_FLOAT:
            if (*(const double *)pa != *(const double *)pb) return 0;
            break;
        case CT_STR: {
            const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
            if ((sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0)) return 0;
            break;
        }
        case CT_FREEZE: {
            const CfgFreeze *fa = pa, *fb = pb;
            if (fa->mode != fb->mode || fa->n != fb->n) return 0;
            for (int j = 0; j < fa->n; j++)
                if (strcmp(fa->trainable[j], fb->trainable[j]) != 0) return 0;
            break;
        }
        }
    }
    return 1;
}

/* Markdown cells must not contain '|'. */
static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

void cfg_print_keys(FILE *f) {
    Config d;
    cfg_defaults(&d);
    char val[4200], desc[256];
    fprintf(f, "| key | value | default | meaning |\n|---|---|---|---|\n");
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        cfg_format_value(&d, k, val, sizeof val);
        cfg_describe(k, desc, sizeof desc);
        fprintf(f, "| `%s` | ", k->path);
        md_cell(f, desc);
        fputs(" | `", f);
        md_cell(f, val);
        fputs("` | ", f);
        md_cell(f, k->doc);
        fputs(" |\n", f);
    }
    cfg_free(&d);
}

int cfg_arch_depth(CfgArch a) {
    switch (a) {
    case CFG_ARCH_RESNET18: return 18;
    case CFG_ARCH_RESNET34: return 34;
    case CFG_ARCH_RESNET50: return 50;
    case CFG_ARCH_RESNET101: return 101;
    }
    return 0;
}

const char *cfg_enum_name(const Config *cfg, const char *key_path) {
    int i = cfg_key_find(key_path);
    if (i < 0 || cfg_keys[i].type != CT_ENUM) return NULL;
    int v = *(const int *)cfg_cfield(cfg, &cfg_keys[i]), n = 0;
    while (cfg_keys[i].names[n]) n++;
    return v >= 0 && v < n ? cfg_keys[i].names[v] : NULL;
}

void cfg_freeze_string(const CfgFreeze *fr, char *buf, size_t cap) {
    if (fr->mode != CFG_FREEZE_LIST) {
        snprintf(buf, cap, "%s", fr->mode == CFG_FREEZE_ALL ? "all" : "none");
        return;
    }
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < fr->n && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", fr->trainable[i]);
}

void cfg_where(const Config *cfg, const char *key_path, char *buf, size_t cap) {
    int i = cfg_key_find(key_path);
    const char *src = cfg->source ? cfg->source : "config";
    if (i < 0) {
        snprintf(buf, cap, "%s", src);
    } else if (cfg->loc[i].from_set) {
        snprintf(buf, cap, "--set");
    } else if (cfg->loc[i].line > 0) {
        snprintf(buf, cap, "%s:%d:%d", src, cfg->loc[i].line, cfg->loc[i].col);
    } else {
        snprintf(buf, cap, "%s", src); /* not set: the default */
    }
}
