/* failpoint.c - the crash-injection points of test builds (see
 * failpoint.h). Built only with -Dfailpoints=true.
 *
 * The environment is read at every hit, not cached: a test forks a victim,
 * sets PXS_FAILPOINT in it and expects the next hit to act. Only hits of
 * the armed point are counted, from the moment it is armed.
 */
#include "failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const names[PXS_FP_COUNT + 1] = {
#define PXS_FP_NAME(id, name) name,
	PXS_FAILPOINT_LIST(PXS_FP_NAME)
#undef PXS_FP_NAME
	NULL
};

static unsigned long hits[PXS_FP_COUNT];

const char *const *
pxs__failpoint_names(void)
{
	return names;
}

void
pxs__failpoint(enum pxs_failpoint fp)
{
	const char *spec = getenv("PXS_FAILPOINT");
	size_t len = strlen(names[fp]);
	if (!spec || strncmp(spec, names[fp], len) != 0 ||
	    (spec[len] != '\0' && spec[len] != ':'))
		return;
	const char *p = spec + len;
	char action[32] = "kill";
	unsigned long nth = 1;
	if (*p == ':') {
		p++;
		size_t a = strcspn(p, ":");
		if (a > 0 && a < sizeof action) {
			memcpy(action, p, a);
			action[a] = '\0';
		}
		p += a;
		if (*p == ':')
			nth = strtoul(p + 1, NULL, 10);
	}
	if (__atomic_add_fetch(&hits[fp], 1, __ATOMIC_RELAXED) != nth)
		return;
	if (strcmp(action, "stop") == 0) {
		raise(SIGSTOP);
	} else if (strcmp(action, "exit") == 0) {
		_exit(PXS_FAILPOINT_EXIT);
	} else if (strncmp(action, "sleep=", 6) == 0) {
		long ms = strtol(action + 6, NULL, 10);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	} else {
		raise(SIGKILL);
	}
}
