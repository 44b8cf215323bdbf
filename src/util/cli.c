/* cli.c: "--opt VALUE" / "--opt=VALUE" matching for the command-line mains (see cli.h). */
#include "util/cli.h"

#include <stdio.h>
#include <string.h>

int cli_option_value(int argc, char **argv, int *i, const char *const *opts, const char **val,
                     const char *prog) {
    const char *s = argv[*i];
    for (int k = 0; opts[k]; k++) {
        size_t n = strlen(opts[k]);
        if (strncmp(s, opts[k], n) != 0 || (s[n] != '\0' && s[n] != '=')) continue;
        if (s[n] == '=') {
            *val = s + n + 1;
        } else if (*i + 1 < argc) {
            *val = argv[++*i];
        } else {
            fprintf(stderr, "%s: %s needs a value (%s --help)\n", prog, opts[k], prog);
            return -2;
        }
        return k;
    }
    return -1;
}
