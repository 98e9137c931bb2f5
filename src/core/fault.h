/*
 * fault.h: fault injection for the kill tests. BEARD_FAULT="point:N[,point:N...]": the
 * Nth time the program passes `point` it kills itself with SIGKILL, which is what kill -9
 * does, at a chosen moment instead of a random one. Without BEARD_FAULT it does nothing
 * (one getenv, the first time). Points: "file-commit" (src/io/file.c: a file is complete
 * in its temporary, not yet renamed), and the results store's (src/store/store.h).
 */
#ifndef BEARD_FAULT_H
#define BEARD_FAULT_H

void fault_point(const char *point);

#endif
