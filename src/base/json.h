/* json.h — a small JSON reader (RFC 8259) for the line-oriented data files of
 * post-training (conversations, preference pairs). One call parses one text
 * into a tree; strings are decoded to UTF-8 (\uXXXX and surrogate pairs). */
#ifndef HERD_JSON_H
#define HERD_JSON_H

#include <stddef.h>

typedef enum { HERD_JSON_NULL, HERD_JSON_BOOL, HERD_JSON_NUM, HERD_JSON_STR,
               HERD_JSON_ARR, HERD_JSON_OBJ } herd_json_type;

typedef struct herd_json {
    herd_json_type type;
    double num;               /* NUM; BOOL as 0 / 1 */
    char  *str;               /* STR (NUL-terminated; len bytes, may hold NUL) */
    size_t len;               /* STR: bytes; ARR / OBJ: children */
    struct herd_json *items;  /* ARR / OBJ children */
    char **keys;              /* OBJ: key of each child */
} herd_json;

/* Parse s[0..n). 0, or -1 with a one-line reason in err (e.g. "offset 12:
 * expected ':'"). On success free with herd_json_free. */
int herd_json_parse(herd_json *out, const char *s, size_t n, char *err, size_t errlen);
void herd_json_free(herd_json *j);
/* Child of an object by key; NULL when absent or j is not an object. */
const herd_json *herd_json_get(const herd_json *j, const char *key);

#endif
