/* Put-if-absent on stores that several servers share (memcached, redis), with the engine's
 * own atomic primitive: memcached `add`, redis `SET key value NX PX ms`. ap_socache has no
 * such operation (its store always overwrites), so this talks to the engine directly, with
 * the same key names the socache provider uses ("<cache name>:" + hex of the id), so the
 * provider reads and removes what this writes. */
#ifndef MOD_MC_STORE_ATOMIC_H
#define MOD_MC_STORE_ATOMIC_H

#include "httpd.h"
#include <apr_time.h>

/* 1 when the provider is one whose engine this file can speak to. */
int mc_atomic_supported(const char *provider);

/* Per child: connections to the engine named by the provider's arguments ("host:port",
 * memcache also "host:port,host:port"). */
apr_status_t mc_atomic_child_init(apr_pool_t *p, server_rec *s, const char *provider,
                                  const char *args, const char *cache_name);

/* Write data under id unless the engine already holds a live value there: APR_SUCCESS when
 * written, APR_EEXIST when present, another status when the engine could not be asked. */
apr_status_t mc_atomic_add(server_rec *s, const unsigned char *id, unsigned int idlen,
                           apr_time_t expiry, const unsigned char *data, apr_size_t len,
                           apr_pool_t *p);

#endif
