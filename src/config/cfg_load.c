/* cfg_load.c: YAML (libyaml document API) and --set overrides into a Config.
 *
 * The YAML tree is walked with the dotted path of each node: a path that is a key in the
 * table takes the value, a path that is a section takes a mapping, anything else is an
 * unknown key (with the nearest key as a suggestion). Every message starts with where the
 * value came from: "FILE:LINE:COL: key.path: ..." or "--set K=V: key.path: ...". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/cfg_table.h"
#include "util/file.h"

typedef struct LoadCtx {
    Config *cfg;
    yaml_document_t *doc;
    const char *name;    /* file name for messages, or NULL for --set */
    const char *set_kv;  /* the whole --set argument */
    Err *err;
} LoadCtx;

/* "FILE:LINE:COL" or "--set K=V" */
static void where(const LoadCtx *c, const yaml_node_t *n, char *buf, size_t cap) {
    if (c->set_kv)
        snprintf(buf, cap, "--set %s", c->set_kv);
    else
        snprintf(buf, cap, "%s:%d:%d", c->name, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1);
}

static int fail(const LoadCtx *c, const yaml_node_t *n, const char *path, const char *why) {
    char w[1200];
    where(c, n, w, sizeof w);
    if (path && *path) return err_set(c->err, "%s: %s: %s", w, path, why);
    return err_set(c->err, "%s: %s", w, why);
}

static const char *node_kind(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a scalar";
    }
}

/* Names directly under a section ("" = top level), comma-separated, each once. */
static void list_children(const char *section, char *buf, size_t cap) {
    size_t n = 0, sl = strlen(section);
    buf[0] = '\0';
    char seen[CFG_MAX_KEYS][48];
    int nseen = 0;
    for (int i = 0; i < cfg_n_keys; i++) {
        const char *p = cfg_keys[i].path;
        if (sl) {
            if (strncmp(p, section, sl) != 0 || p[sl] != '.') continue;
            p += sl + 1;
        }
        size_t len = strcspn(p, ".");
        if (len >= sizeof seen[0]) continue;
        int dup = 0;
        for (int j = 0; j < nseen && !dup; j++) dup = strlen(seen[j]) == len && strncmp(seen[j], p, len) == 0;
        if (dup) continue;
        memcpy(seen[nseen], p, len);
        seen[nseen++][len] = '\0';
        if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", n ? ", " : "", (int)len, p);
    }
}

static void record_loc(LoadCtx *c, int idx, const yaml_node_t *n) {
    CfgLoc *l = &c->cfg->loc[idx];
    if (c->set_kv) {
        l->line = l->col = 0;
        l->from_set = 1;
    } else {
        l->line = (int)n->start_mark.line + 1;
        l->col = (int)n->start_mark.column + 1;
        l->from_set = 0;
    }
}

static int apply_node(LoadCtx *c, const char *path, yaml_node_t *n);

static int apply_leaf(LoadCtx *c, int idx, const char *path, yaml_node_t *n) {
    const CfgKey *k = &cfg_keys[idx];
    char why[1024], d[200];
    if (n->type == YAML_SCALAR_NODE) {
        const char *text = (const char *)n->data.scalar.value;
        int plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (cfg_set_scalar(c->cfg, k, text, plain, why, sizeof why) != 0) return fail(c, n, path, why);
    } else if (n->type == YAML_SEQUENCE_NODE && k->type == CT_FREEZE) {
        const char *items[64];
        int cnt = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(c->doc, *it);
            if (!e || e->type != YAML_SCALAR_NODE)
                return fail(c, e ? e : n, path, "expected a list of stage names, got a nested collection");
            if (cnt == 64) return fail(c, n, path, "more than 64 stage names");
            items[cnt++] = (const char *)e->data.scalar.value;
        }
        if (cfg_set_freeze_list(c->cfg, k, items, cnt, why, sizeof why) != 0) return fail(c, n, path, why);
    } else {
        cfg_describe(k, d, sizeof d);
        snprintf(why, sizeof why, "expected %s, got %s", d, node_kind(n));
        return fail(c, n, path, why);
    }
    record_loc(c, idx, n);
    return 0;
}

/* A section given as null (e.g. "test: null" or "test:") clears it, when every key
 * under it may be null. */
static int apply_null_section(LoadCtx *c, const char *path, yaml_node_t *n) {
    size_t pl = strlen(path);
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        if (strncmp(k->path, path, pl) != 0 || k->path[pl] != '.') continue;
        if (k->type != CT_STR || !(k->flags & CF_NULLABLE)) return -1;
    }
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        if (strncmp(k->path, path, pl) != 0 || k->path[pl] != '.') continue;
        cfg_free_value(c->cfg, k);
        record_loc(c, i, n);
    }
    return 0;
}

static int apply_mapping(LoadCtx *c, const char *path, yaml_node_t *n) {
    yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        if (!kn || !vn) return fail(c, n, path, "malformed mapping");
        if (kn->type != YAML_SCALAR_NODE) return fail(c, kn, path, "a key must be a plain name, not a collection");
        const char *key = (const char *)kn->data.scalar.value;
        /* libyaml keeps duplicate keys; a second value would silently win */
        for (yaml_node_pair_t *q = start; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
            if (qk && qk->type == YAML_SCALAR_NODE && strcmp((const char *)qk->data.scalar.value, key) == 0) {
                char why[600];
                snprintf(why, sizeof why, "duplicate key \"%s\" (first at line %d)", key, (int)qk->start_mark.line + 1);
                return fail(c, kn, path, why);
            }
        }
        char child[256];
        if (snprintf(child, sizeof child, "%s%s%s", path, *path ? "." : "", key) >= (int)sizeof child)
            return fail(c, kn, path, "key path too long");
        int idx = cfg_key_find(child);
        if (idx < 0 && !cfg_is_section(child)) {
            char sug[160], why[1400], kids[900];
            if (cfg_suggest(child, sug, sizeof sug)) {
                snprintf(why, sizeof why, "unknown key (did you mean \"%s\"?)", sug);
            } else {
                list_children(path, kids, sizeof kids);
                snprintf(why, sizeof why, "unknown key (%s%s%s: %s)", *path ? "keys under " : "top-level keys",
                         *path ? path : "", "", kids);
            }
            return fail(c, kn, child, why);
        }
        if (apply_node(c, child, vn) != 0) return -1;
    }
    return 0;
}

static int apply_node(LoadCtx *c, const char *path, yaml_node_t *n) {
    int idx = *path ? cfg_key_find(path) : -1;
    if (idx >= 0) return apply_leaf(c, idx, path, n);
    if (n->type == YAML_MAPPING_NODE) return apply_mapping(c, path, n);
    if (*path && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        const char *v = (const char *)n->data.scalar.value;
        if ((!*v || !strcmp(v, "null") || !strcmp(v, "~")) && apply_null_section(c, path, n) == 0) return 0;
    }
    char kids[900], why[1200];
    list_children(path, kids, sizeof kids);
    snprintf(why, sizeof why, "expected a mapping with keys %s, got %s", kids, node_kind(n));
    return fail(c, n, *path ? path : "(top level)", why);
}

/* Parses text (whole document); *has_root = 0 for an empty document. */
static int parse_doc(yaml_document_t *doc, const char *text, const char *name, const char *set_kv, Err *err) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return err_set(err, "%s: libyaml: out of memory", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    int rc = 0;
    if (!yaml_parser_load(&parser, doc)) {
        const char *prob = parser.problem ? parser.problem : "malformed YAML";
        if (set_kv)
            rc = err_set(err, "--set %s: the value is not valid YAML: %s", set_kv, prob);
        else if (parser.context)
            rc = err_set(err, "%s:%d:%d: YAML syntax error: %s %s started at line %d", name,
                         (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1, prob,
                         parser.context, (int)parser.context_mark.line + 1);
        else
            rc = err_set(err, "%s:%d:%d: YAML syntax error: %s", name, (int)parser.problem_mark.line + 1,
                         (int)parser.problem_mark.column + 1, prob);
        yaml_parser_delete(&parser);
        return rc;
    }
    /* a second document would be ignored silently: refuse it */
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        yaml_node_t *r = yaml_document_get_root_node(&extra);
        if (r) {
            rc = set_kv ? err_set(err, "--set %s: expected one value, got several YAML documents", set_kv)
                        : err_set(err, "%s:%d:%d: a second YAML document; a config is one document", name,
                                  (int)r->start_mark.line + 1, (int)r->start_mark.column + 1);
        }
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);
    if (rc) yaml_document_delete(doc);
    return rc;
}

static int apply_text(Config *cfg, const char *text, const char *name, Err *err) {
    yaml_document_t doc;
    if (parse_doc(&doc, text, name, NULL, err) != 0) return -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (root) {
        LoadCtx c = {cfg, &doc, name, NULL, err};
        if (root->type != YAML_MAPPING_NODE) {
            char kids[900], why[1200];
            list_children("", kids, sizeof kids);
            snprintf(why, sizeof why, "expected a mapping at the top level (keys %s), got %s", kids, node_kind(root));
            rc = fail(&c, root, NULL, why);
        } else {
            rc = apply_mapping(&c, "", root);
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

int cfg_apply_set(Config *cfg, const char *kv, Err *err) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return err_set(err, "--set %s: expected KEY=VALUE (e.g. --set train.lr=1e-3)", kv);
    char path[256];
    size_t kl = (size_t)(eq - kv);
    while (kl && (kv[kl - 1] == ' ')) kl--;
    if (kl >= sizeof path) return err_set(err, "--set %s: key too long", kv);
    memcpy(path, kv, kl);
    path[kl] = '\0';
    int idx = cfg_key_find(path);
    if (idx < 0 && !cfg_is_section(path)) {
        char sug[160];
        if (cfg_suggest(path, sug, sizeof sug))
            return err_set(err, "--set %s: %s: unknown key (did you mean \"%s\"?)", kv, path, sug);
        return err_set(err, "--set %s: %s: unknown key (vqa_train --print-keys lists them)", kv, path);
    }
    yaml_document_t doc;
    if (parse_doc(&doc, eq + 1, "--set", kv, err) != 0) return -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc;
    LoadCtx c = {cfg, &doc, NULL, kv, err};
    if (root) {
        rc = apply_node(&c, path, root);
    } else {
        /* "--set k=" is null, as "k:" is in a file */
        yaml_node_t null_node;
        memset(&null_node, 0, sizeof null_node);
        null_node.type = YAML_SCALAR_NODE;
        null_node.data.scalar.value = (yaml_char_t *)"";
        null_node.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
        rc = apply_node(&c, path, &null_node);
    }
    yaml_document_delete(&doc);
    return rc;
}

void cfg_defaults(Config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char why[512];
    for (int i = 0; i < cfg_n_keys; i++) {
        const CfgKey *k = &cfg_keys[i];
        /* a NULL default is YAML null; test_config checks every default is accepted */
        if (cfg_set_scalar(cfg, k, k->def ? k->def : "null", k->def == NULL, why, sizeof why) != 0) continue;
    }
}

void cfg_free(Config *cfg) {
    for (int i = 0; i < cfg_n_keys; i++) cfg_free_value(cfg, &cfg_keys[i]);
    free(cfg->source);
    cfg->source = NULL;
}

static int load_common(Config *cfg, const char *text, const char *name, char **sets, int nsets, Err *err) {
    if (text && apply_text(cfg, text, name, err) != 0) goto fail;
    for (int i = 0; i < nsets; i++)
        if (cfg_apply_set(cfg, sets[i], err) != 0) goto fail;
    if (cfg_validate(cfg, err) != 0) goto fail;
    return 0;
fail:
    cfg_free(cfg);
    return -1;
}

/* The config text; a NUL byte inside it is an error (not a YAML text file). */
static char *read_file(const char *path, Err *err) {
    char *buf;
    size_t n;
    if (file_read_all(path, "the config file", (size_t)64 << 20, &buf, &n, err) != 0) return NULL;
    if (strlen(buf) != n) {
        err_set(err, "%s:%d: a NUL byte: not a YAML text file", path, 1);
        free(buf);
        return NULL;
    }
    return buf;
}

int cfg_load(Config *cfg, const char *path, char **sets, int nsets, Err *err) {
    cfg_defaults(cfg);
    if (!path) return load_common(cfg, NULL, NULL, sets, nsets, err);
    char *text = read_file(path, err);
    if (!text) {
        cfg_free(cfg);
        return -1;
    }
    cfg->source = strdup(path);
    int rc = load_common(cfg, text, path, sets, nsets, err);
    free(text);
    return rc;
}

int cfg_load_string(Config *cfg, const char *yaml, const char *name, char **sets, int nsets, Err *err) {
    cfg_defaults(cfg);
    cfg->source = strdup(name ? name : "(config text)");
    return load_common(cfg, yaml, cfg->source, sets, nsets, err);
}
