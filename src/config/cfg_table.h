/* cfg_table.h: the key table behind config.h (private to src/config/).
 *
 * Each row names one leaf key: its dotted path, C type, where it lives in Config,
 * its default (as YAML text, parsed by the same code as the file), its range or enum
 * names, and the one-line doc that configs/README.md shows. Rows of one section are
 * contiguous so the dump can nest them. */
#ifndef VQA_CFG_TABLE_H
#define VQA_CFG_TABLE_H

#include <stddef.h>

#include "config/config.h"

typedef enum CfgType {
    CT_INT,     /* int */
    CT_I64,     /* int64_t */
    CT_FLOAT,   /* double */
    CT_BOOL,    /* int 0/1 */
    CT_STR,     /* char * (owned) */
    CT_ENUM,    /* an enum stored as int; names[i] is value i */
    CT_FREEZE   /* CfgFreeze */
} CfgType;

enum {
    CF_NULLABLE = 1 << 0,  /* CT_STR: null allowed */
    CF_LO_OPEN = 1 << 1,   /* value > lo instead of >= lo */
    CF_HI_OPEN = 1 << 2,   /* value < hi instead of <= hi */
    CF_IN_FILE = 1 << 3,   /* CT_STR: an input file that must exist (cfg_check_files) */
    CF_IN_DIR = 1 << 4     /* CT_STR: an input folder that must exist */
};

typedef struct CfgKey {
    const char *path;
    CfgType type;
    size_t offset;
    const char *def;            /* default as YAML text; NULL = null (CT_STR only) */
    double lo, hi;              /* numeric range */
    unsigned flags;
    const char *const *names;   /* CT_ENUM: NULL-terminated */
    const char *doc;
} CfgKey;

extern const CfgKey cfg_keys[];
extern const int cfg_n_keys;

/* Index of the key with this exact path, or -1. */
int cfg_key_find(const char *path);
/* 1 if path names a section (a proper prefix of some key path followed by '.'). */
int cfg_is_section(const char *path);
/* Closest key or section to an unknown path, written to out; 0 when nothing is close. */
int cfg_suggest(const char *path, char *out, size_t cap);

static inline void *cfg_field(Config *c, const CfgKey *k) { return (char *)c + k->offset; }
static inline const void *cfg_cfield(const Config *c, const CfgKey *k) {
    return (const char *)c + k->offset;
}

/* Scalar text -> the key's field. plain: the YAML scalar was unquoted (then null/~/empty
 * mean null and true/false are booleans). On failure returns -1 with the reason (what
 * was expected, what was found) in why. Frees the old string/list it replaces. */
int cfg_set_scalar(Config *c, const CfgKey *k, const char *text, int plain, char *why, size_t cap);
/* CT_FREEZE from a YAML sequence of names. */
int cfg_set_freeze_list(Config *c, const CfgKey *k, const char *const *items, int n, char *why,
                        size_t cap);
/* "an integer >= 1", "a number > 0 and <= 10", "one of: a, b", "a path or null"... */
void cfg_describe(const CfgKey *k, char *buf, size_t cap);
/* The value as YAML text (strings double-quoted, shortest round-trip floats). */
void cfg_format_value(const Config *c, const CfgKey *k, char *buf, size_t cap);
/* Frees the key's owned memory (string or list) and resets it to NULL/empty. */
void cfg_free_value(Config *c, const CfgKey *k);
/* Range check of the numeric value now stored; -1 with why on failure. */
int cfg_check_range(const Config *c, const CfgKey *k, char *why, size_t cap);

#endif
