/* hwloc_xml_check.c — what herd checks in an hwloc XML file before hwloc
 * reads it (topology/hwloc_discover.c loads it after this check and a probe
 * load in a child process).
 *
 * hwloc 2.9 takes a PU or NUMANode element without an os_index attribute as
 * index 2^32-1 and sets that bit in the object's cpuset or nodeset: a 512 MiB
 * bitmap and seconds of page faults, twice (probe and load), for a 3 KB file
 * (found by tests/fuzz/fuzz_hwloc). Every PU and NUMANode element must
 * therefore carry an os_index below HERD_TOPO_MAX_OS_INDEX. The scan is of
 * the text, tag by tag; what it lets through, hwloc's own parser still judges. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "topology/topo_internal.h"

#define XML_MAX_BYTES (64L << 20) /* a large machine's XML is a few MB */

/* The value of attribute `name` inside tag [t, end): a pointer past its
 * opening quote, or NULL. The attribute name must follow white space. */
static const char *attr_value(const char *t, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = t; p + n + 2 <= end; p++)
        if ((p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r') && !strncmp(p, name, n) &&
            p[n] == '=' && p[n + 1] == '"')
            return p + n + 2;
    return NULL;
}

static int check_tag(const char *path, const char *text, const char *t, const char *end)
{
    const char *type = attr_value(t, end, "type");
    if (!type || (strncmp(type, "PU\"", 3) && strncmp(type, "NUMANode\"", 9))) return 0;
    int line = 1;
    for (const char *p = text; p < t; p++) line += *p == '\n';
    const char *idx = attr_value(t, end, "os_index");
    char *stop = NULL;
    unsigned long v = idx && *idx >= '0' && *idx <= '9' ? strtoul(idx, &stop, 10) : 0;
    if (!idx || !stop || *stop != '"' || v >= HERD_TOPO_MAX_OS_INDEX) {
        fprintf(stderr, "%s:%d: a %.*s object %s (herd needs an os_index below %d on every PU and "
                "NUMANode): export the file again with lstopo --of xml\n", path, line,
                type[0] == 'P' ? 2 : 8, type, idx ? "has an os_index out of range" : "has no os_index",
                HERD_TOPO_MAX_OS_INDEX);
        return -1;
    }
    return 0;
}

int herd_topo_xml_check(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot read hwloc XML file: %s\n", path, strerror(errno));
        return -1;
    }
    char *text = malloc(XML_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, XML_MAX_BYTES + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!text || err || n > XML_MAX_BYTES) {
        fprintf(stderr, "%s: %s\n", path, !text ? "out of memory" : err ? "read error"
                : "larger than 64 MiB: not the hwloc XML of one node");
        free(text);
        return -1;
    }
    text[n] = '\0';
    int rc = 0;
    for (const char *t = strstr(text, "<object"); t && rc == 0; t = strstr(t + 1, "<object")) {
        const char *end = strchr(t, '>');
        if (!end) break; /* unterminated: hwloc's parser says so */
        rc = check_tag(path, text, t + 1, end);
    }
    free(text);
    return rc;
}
