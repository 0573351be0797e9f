/*
 * LD_PRELOAD shim for Debian 12's simple-whip-client, which aborts at start-up there:
 *
 *   libsoup-ERROR: libsoup2 symbols detected. Using libsoup2 and libsoup3 in the same process is not supported.
 *
 * whip-client links libsoup 2.4, while GStreamer's nice plugin pulls libsoup 3 in through libnice's UPnP
 * support (libgupnp-igd). libsoup 3 refuses to load when it can look up a libsoup 2 function through
 * g_module_symbol(); this shim makes that one lookup fail and forwards every other one. It also keeps
 * libnice from starting UPnP port mapping, the only user of libsoup 3 in the process: with both libraries'
 * GTypes in one process that code logs CRITICAL errors and crashed the client once in our runs. The
 * client's own HTTP (libsoup 2) and the ICE/DTLS/SRTP stack are unchanged.
 *
 * Build: cc -shared -fPIC -o soup_shim.so soup_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

typedef int gboolean;
typedef void *gpointer;

gboolean g_module_symbol(void *module, const char *symbol_name, gpointer *symbol) {
  static gboolean (*next)(void *, const char *, gpointer *) = NULL;
  if (symbol_name != NULL && strcmp(symbol_name, "soup_uri_new") == 0) {
    if (symbol != NULL) *symbol = NULL;
    return 0;
  }
  if (next == NULL) next = (gboolean (*)(void *, const char *, gpointer *))dlsym(RTLD_NEXT, "g_module_symbol");
  return next(module, symbol_name, symbol);
}

/* libnice takes a NULL UPnP agent as "UPnP unavailable" and gathers its candidates without it. */
void *gupnp_simple_igd_thread_new(void) {
  return NULL;
}
