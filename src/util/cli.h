/* cli.h: the one parser for "--opt VALUE" / "--opt=VALUE" options shared by the mains. */
#ifndef VQA_CLI_H
#define VQA_CLI_H

/* If argv[*i] is one of opts (a NULL-terminated list) written as "--opt=VALUE" or
 * "--opt VALUE", sets *val, advances *i past a separate value, and returns the option's
 * index. Returns -1 when argv[*i] is none of them, and -2 (with a line on stderr naming
 * prog and the option) when the value is missing. */
int cli_option_value(int argc, char **argv, int *i, const char *const *opts, const char **val,
                     const char *prog);

#endif
