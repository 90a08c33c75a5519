/*
 * cfgfile.h - how every configuration file reaches libconfuse.
 *
 * libconfuse 3.3 has three traps this module closes (see NOTES): its lexer is global (one
 * parse at a time, process-wide), it miscounts line numbers after '#' comments, and it refuses
 * comments inside { ... } lists; and it expands ${NAME} in double-quoted strings from the
 * environment, which would eat our ${field} references.  So a file is read here, prepared
 * (cfgfile_prepare), and parsed with cfg_parse_buf() under one lock, with errors reported as
 * "path:line: message".
 */
#ifndef MP_CFGFILE_H
#define MP_CFGFILE_H

#include <confuse.h>
#include <stddef.h>

struct diag;

/* Parses path into cfg.  Returns 0, or -1 with the errors in d.  If textp is not NULL it
   receives the comment-free text (caller frees; NULL if the file could not be read). */
int cfgfile_parse(cfg_t *cfg, const char *path, struct diag *d, char **textp);

/* During cfgfile_parse() (for option validators, which libconfuse gives no user pointer):
   the diag and path of the parse in progress, and the line of the option being set. */
struct diag *cfgfile_diag(void);
const char *cfgfile_path(void);

/* The line of each top-level `kind "title"` section in text (prepared text, as *textp gives
   it), in file order: the k-th is the line of cfg_getnsec(cfg, kind, k).  Caller frees. */
int *cfgfile_section_lines(const char *text, const char *kind, size_t *n);

/* The text as libconfuse is given it (exposed for tests): '#', '//' and C comments outside
   quotes blanked (newlines kept), "${" inside double quotes escaped so that libconfuse leaves
   ${field} references alone instead of expanding environment variables.  Caller frees;
   NULL if out of memory. */
char *cfgfile_prepare(const char *text);

#endif
