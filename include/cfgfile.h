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

/* Parses path into cfg.  Returns 0, or -1 with the errors in d. */
int cfgfile_parse(cfg_t *cfg, const char *path, struct diag *d);

/* The same in steps, for files too large for one cfg_t: */

/* Reads path and prepares it (cfgfile_prepare).  Returns the text (caller frees), or NULL
   with the reason in d. */
char *cfgfile_read(const char *path, struct diag *d);

/* Splits prepared text before top-level sections into parts of at most max_sections sections
   each (at least one part, perhaps empty), each preceded by line breaks for the lines before
   it, so that a part parsed on its own gives the line numbers of the whole file.  Why: for
   every titled section libconfuse compares the title with every earlier section's in the same
   cfg_t, so 20,000 rules in one cfg_t took 8 s, and in parts of 1,000 take a few ms.  Returns
   the parts; caller frees each and the array. */
char **cfgfile_split(const char *text, size_t max_sections, size_t *nparts);

/* Parses prepared text (read from path) into cfg.  Returns 0, or -1 with the errors in d. */
int cfgfile_parse_text(cfg_t *cfg, const char *path, const char *text, struct diag *d);

/* During cfgfile_parse() (for option validators, which libconfuse gives no user pointer):
   the diag and path of the parse in progress, and the line of the option being set. */
struct diag *cfgfile_diag(void);
const char *cfgfile_path(void);

/* The line of each top-level `kind "title"` section in prepared text (or a part of it), in
   file order: the k-th is the line of cfg_getnsec(cfg, kind, k).  Caller frees. */
int *cfgfile_section_lines(const char *text, const char *kind, size_t *n);

/* The text as libconfuse is given it (exposed for tests): '#', '//' and C comments outside
   quotes blanked (newlines kept), "${" inside double quotes escaped so that libconfuse leaves
   ${field} references alone instead of expanding environment variables.  Caller frees;
   NULL if out of memory. */
char *cfgfile_prepare(const char *text);

#endif
