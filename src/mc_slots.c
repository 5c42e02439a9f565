/* mc_slots: hashed table of fixed-size slots in one shared block (see mc_slots.h). */
#include "mc_slots.h"

#include <apr_atomic.h>
#include <apr_general.h>
#include <string.h>

#define MC_SLOTS_MAGIC "MCSLOTS\0"
/* 2: the stripe head's spare word became the list of free short slots. A version 1 block
 * (that word always 0) is a valid version 2 block and is attached as one. */
#define MC_SLOTS_VERSION 2
#define MC_SLOTS_VERSION_OLDEST 1
#define ALIGN64(x) (((x) + 63) & ~(apr_uint64_t)63)

/* Everything in the block is fixed-width and placed by offset. */
typedef struct {
    char magic[8];
    apr_uint32_t version;
    apr_uint32_t header_bytes;
    apr_uint32_t entries;
    apr_uint32_t value_max;
    apr_uint32_t stripes;
    apr_uint32_t slots_per_stripe;      /* B */
    apr_uint32_t index_per_stripe;      /* power of two >= 2 B */
    apr_uint32_t slot_bytes;
    apr_uint32_t key_max;
    apr_uint32_t lock_bytes;
    apr_uint64_t stripe_bytes;
    apr_uint64_t total_bytes;
    apr_uint64_t seed[2];               /* hash key: spread keys nobody can aim at one stripe */
    apr_uint32_t rebuilds;              /* stripes rebuilt after a writer died (atomic) */
} mc_slots_header;

/* A stripe's head: the caller's lock room, then its own state on another cache line. */
typedef struct {
    unsigned char lock[MC_SLOTS_LOCK_BYTES];
    apr_uint32_t used;                  /* entries held (atomic stores: read without lock) */
    apr_uint32_t fresh;                 /* slots [fresh, B) were never used */
    apr_uint32_t free_head;             /* slot + 1 of the first free slot, 0 = none */
    apr_uint32_t free_short;            /* the same for short slots (slot_is_short) */
    apr_uint64_t evictions;
    unsigned char pad2[40];
} mc_slots_stripe;

/* Index entry: slot 0 means empty, else slot number + 1. The tag is the high half of the
 * key's hash; its low bits are the entry's home position. */
typedef struct {
    apr_uint32_t tag;
    apr_uint32_t slot;
    apr_int64_t expiry;
} mc_slots_ix;

enum { SLOT_FREE = 0, SLOT_USED = 0x55534544 };

typedef struct {
    apr_uint32_t state;
    apr_uint32_t tag;
    apr_uint32_t key_len;
    apr_uint32_t val_len;
    apr_uint32_t next_free;             /* while free: slot + 1 of the next free, 0 = end */
    apr_uint32_t mark;                  /* the caller's, set by touch; 0 when never touched */
    apr_int64_t expiry;
    char key[MC_SLOTS_KEY_MAX];
    /* value follows */
} mc_slots_slot;

#define STRIPE_HEAD_BYTES ALIGN64(sizeof(mc_slots_stripe))
#define HEADER_BYTES ALIGN64(sizeof(mc_slots_header))

struct mc_slots {
    unsigned char *base;
    mc_slots_header *h;
    apr_uint32_t stripes, b, ixn, slot_bytes, value_max;
    apr_uint64_t stripe_bytes;
    apr_uint64_t seed[2];
    mc_slots_rebuilt_fn *rebuilt;
    void *rebuilt_baton;
};

typedef struct {
    apr_uint32_t stripes, b, ixn, slot_bytes;
    apr_uint64_t stripe_bytes, total;
} geometry;

/* ---- hashing: SipHash-2-4, keyed by the table's seed ---- */

#define ROTL(x, b) (apr_uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
    do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

static apr_uint64_t load64(const unsigned char *p)
{
    apr_uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static apr_uint64_t siphash(const apr_uint64_t seed[2], const unsigned char *in, apr_size_t n)
{
    apr_uint64_t v0 = 0x736f6d6570736575ULL ^ seed[0], v1 = 0x646f72616e646f6dULL ^ seed[1];
    apr_uint64_t v2 = 0x6c7967656e657261ULL ^ seed[0], v3 = 0x7465646279746573ULL ^ seed[1];
    apr_uint64_t m, b = (apr_uint64_t)n << 56;
    const unsigned char *end = in + (n & ~(apr_size_t)7);
    unsigned left = (unsigned)(n & 7);

    for (; in != end; in += 8) {
        m = load64(in);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    while (left--) {
        b |= (apr_uint64_t)in[left] << (8 * left);
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- geometry ---- */

static double sqrt_newton(double x)
{
    double r = x > 1 ? x : 1;
    int i;
    for (i = 0; i < 64; i++) {
        r = 0.5 * (r + x / r);
    }
    return r;
}

/* Slots per stripe so that n random keys over s stripes overflow none of them with
 * probability below 1e-9. Bernstein: P(X >= m + t) <= exp(-t^2 / (2 (m + t/3))) for a sum
 * of independent Bernoulli (mean m = n / s); with L = ln(s / 1e-9) that is below 1e-9 / s
 * for t = L/3 + sqrt(L^2/9 + 2 L m). The union over s stripes gives 1e-9. */
static apr_uint32_t slots_per_stripe(apr_uint32_t n, apr_uint32_t s)
{
    double m = (double)n / s, lg = 20.7233 /* ln 1e9 */, t;
    apr_uint32_t k;

    if (s == 1) {
        return n;
    }
    for (k = s; k > 1; k >>= 1) {
        lg += 0.693148;                 /* ln 2, rounded up */
    }
    t = lg / 3 + sqrt_newton(lg * lg / 9 + 2 * lg * m);
    return (apr_uint32_t)(m + t) + 1;
}

static int make_geometry(apr_uint32_t n, apr_uint32_t r, geometry *g)
{
    apr_uint64_t ix;

    if (n == 0 || n > MC_SLOTS_ENTRIES_MAX || r == 0 || r > MC_SLOTS_VALUE_MAX) {
        return 0;
    }
    g->stripes = 1;
    while (g->stripes < MC_SLOTS_STRIPES_MAX
           && n / (g->stripes * 2) >= MC_SLOTS_STRIPE_MIN_ENTRIES) {
        g->stripes *= 2;
    }
    g->b = slots_per_stripe(n, g->stripes);
    for (g->ixn = 2; g->ixn < 2 * g->b; g->ixn *= 2) {
    }
    g->slot_bytes = (apr_uint32_t)ALIGN64(sizeof(mc_slots_slot) + r);
    ix = ALIGN64((apr_uint64_t)g->ixn * sizeof(mc_slots_ix));
    g->stripe_bytes = STRIPE_HEAD_BYTES + ix + (apr_uint64_t)g->b * g->slot_bytes;
    g->total = HEADER_BYTES + g->stripe_bytes * g->stripes;
    return g->total <= (apr_size_t)-1;
}

apr_size_t mc_slots_size_for(apr_uint32_t entries, apr_uint32_t value_max)
{
    geometry g;
    return make_geometry(entries, value_max, &g) ? (apr_size_t)g.total : 0;
}

/* ---- addressing ---- */

static mc_slots_stripe *stripe_at(const mc_slots *t, unsigned s)
{
    return (mc_slots_stripe *)(t->base + HEADER_BYTES + t->stripe_bytes * s);
}

static mc_slots_ix *index_of(const mc_slots *t, mc_slots_stripe *st)
{
    return (mc_slots_ix *)((unsigned char *)st + STRIPE_HEAD_BYTES);
}

static mc_slots_slot *slot_at(const mc_slots *t, mc_slots_stripe *st, apr_uint32_t i)
{
    return (mc_slots_slot *)((unsigned char *)st + STRIPE_HEAD_BYTES
                             + ALIGN64((apr_uint64_t)t->ixn * sizeof(mc_slots_ix))
                             + (apr_uint64_t)i * t->slot_bytes);
}

static unsigned char *value_of(mc_slots_slot *sl)
{
    return (unsigned char *)(sl + 1);
}

static void handle_init(mc_slots *t, void *block, const geometry *g, apr_uint32_t r)
{
    t->base = block;
    t->h = block;
    t->stripes = g->stripes;
    t->b = g->b;
    t->ixn = g->ixn;
    t->slot_bytes = g->slot_bytes;
    t->stripe_bytes = g->stripe_bytes;
    t->value_max = r;
    t->seed[0] = t->h->seed[0];
    t->seed[1] = t->h->seed[1];
}

static void stripe_reset(mc_slots *t, mc_slots_stripe *st)
{
    memset(index_of(t, st), 0, (apr_size_t)t->ixn * sizeof(mc_slots_ix));
    st->fresh = 0;
    st->free_head = 0;
    st->free_short = 0;
    apr_atomic_set32(&st->used, 0);
}

apr_status_t mc_slots_create(void *block, apr_size_t size, apr_uint32_t entries,
                             apr_uint32_t value_max, apr_pool_t *p, mc_slots **out)
{
    geometry g;
    mc_slots_header *h = block;
    mc_slots *t;
    apr_status_t rv;
    unsigned s;

    if (!block || ((apr_uintptr_t)block & 63) || !make_geometry(entries, value_max, &g)
        || size < g.total) {
        return APR_EINVAL;
    }
    memset(h, 0, HEADER_BYTES);
    if ((rv = apr_generate_random_bytes((unsigned char *)h->seed, sizeof(h->seed)))
        != APR_SUCCESS) {
        return rv;
    }
    h->version = MC_SLOTS_VERSION;
    h->header_bytes = (apr_uint32_t)HEADER_BYTES;
    h->entries = entries;
    h->value_max = value_max;
    h->stripes = g.stripes;
    h->slots_per_stripe = g.b;
    h->index_per_stripe = g.ixn;
    h->slot_bytes = g.slot_bytes;
    h->key_max = MC_SLOTS_KEY_MAX;
    h->lock_bytes = MC_SLOTS_LOCK_BYTES;
    h->stripe_bytes = g.stripe_bytes;
    h->total_bytes = g.total;
    t = apr_pcalloc(p, sizeof(*t));
    handle_init(t, block, &g, value_max);
    for (s = 0; s < g.stripes; s++) {
        mc_slots_stripe *st = stripe_at(t, s);
        memset(st, 0, STRIPE_HEAD_BYTES);
        stripe_reset(t, st);
    }
    /* The magic last: a block whose creation was cut short is never attached. */
    memcpy(h->magic, MC_SLOTS_MAGIC, sizeof(h->magic));
    *out = t;
    return APR_SUCCESS;
}

apr_status_t mc_slots_attach(void *block, apr_size_t size, apr_uint32_t entries,
                             apr_uint32_t value_max, apr_pool_t *p, mc_slots **out)
{
    mc_slots_header *h = block;
    mc_slots *t;
    geometry g;

    if (!block || ((apr_uintptr_t)block & 63) || size < HEADER_BYTES
        || memcmp(h->magic, MC_SLOTS_MAGIC, sizeof(h->magic))
        || h->version < MC_SLOTS_VERSION_OLDEST || h->version > MC_SLOTS_VERSION
        || h->header_bytes != HEADER_BYTES
        || h->key_max != MC_SLOTS_KEY_MAX || h->lock_bytes != MC_SLOTS_LOCK_BYTES) {
        return APR_EINVAL;
    }
    if (!make_geometry(entries, value_max, &g) || h->entries != entries
        || h->value_max != value_max || h->stripes != g.stripes
        || h->slots_per_stripe != g.b || h->index_per_stripe != g.ixn
        || h->slot_bytes != g.slot_bytes || h->stripe_bytes != g.stripe_bytes
        || h->total_bytes != g.total || size < g.total) {
        return APR_EMISMATCH;
    }
    /* Marked as ours: a module that predates the short-slot list would leave the slots on it
     * neither used nor free, so it must refuse the block rather than attach it. */
    h->version = MC_SLOTS_VERSION;
    t = apr_pcalloc(p, sizeof(*t));
    handle_init(t, block, &g, value_max);
    *out = t;
    return APR_SUCCESS;
}

/* ---- keys ---- */

apr_status_t mc_slots_key_make(const mc_slots *t, const char *key, mc_slots_key *k)
{
    apr_size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > MC_SLOTS_KEY_MAX) {
        return APR_EINVAL;
    }
    k->key = key;
    k->len = n;
    k->hash = siphash(t->seed, (const unsigned char *)key, n);
    return APR_SUCCESS;
}

unsigned mc_slots_key_stripe(const mc_slots *t, const mc_slots_key *k)
{
    return (unsigned)(k->hash & (t->stripes - 1));
}

unsigned mc_slots_stripe_count(const mc_slots *t)
{
    return t->stripes;
}

void *mc_slots_lock_area(mc_slots *t, unsigned stripe)
{
    return stripe < t->stripes ? stripe_at(t, stripe)->lock : NULL;
}

int mc_slots_stripe_of(const mc_slots *t, const char *key)
{
    mc_slots_key k;
    return mc_slots_key_make(t, key, &k) == APR_SUCCESS ? (int)mc_slots_key_stripe(t, &k) : -1;
}

/* ---- one stripe ---- */

typedef struct {
    mc_slots *t;
    mc_slots_stripe *st;
    mc_slots_ix *ix;
    apr_uint32_t mask;
} stripe_ref;

static void ref_of(mc_slots *t, unsigned s, stripe_ref *r)
{
    r->t = t;
    r->st = stripe_at(t, s);
    r->ix = index_of(t, r->st);
    r->mask = t->ixn - 1;
}

static apr_uint32_t tag_of(const mc_slots_key *k)
{
    return (apr_uint32_t)(k->hash >> 32);
}

/* Position of k in the index, or -1 (then *hole is where it would go). */
static long find(const stripe_ref *r, const mc_slots_key *k, apr_uint32_t *hole)
{
    apr_uint32_t tag = tag_of(k), i = tag & r->mask;
    for (;; i = (i + 1) & r->mask) {
        mc_slots_ix *e = &r->ix[i];
        mc_slots_slot *sl;
        if (!e->slot) {
            *hole = i;
            return -1;
        }
        if (e->tag != tag) {
            continue;
        }
        sl = slot_at(r->t, r->st, e->slot - 1);
        if (sl->key_len == k->len && !memcmp(sl->key, k->key, k->len)) {
            return (long)i;
        }
    }
}

/* At most this many index entries are read ahead of a lookup: about 1.5 are needed. */
#define PREFETCH_PROBES 4
#define LINE 64

/* A read another process may be racing with a write: atomic, so never torn nor elided. */
static unsigned char read_once(const void *p)
{
    return __atomic_load_n((const unsigned char *)p, __ATOMIC_RELAXED);
}

/* Unlocked: see mc_slots.h. It follows the probe sequence find() would, to the first entry
 * with k's tag. */
void mc_slots_prefetch(const mc_slots *t, const mc_slots_key *k)
{
    stripe_ref r;
    apr_uint32_t tag = tag_of(k), i, n;
    volatile unsigned char sink = 0;

    ref_of((mc_slots *)t, mc_slots_key_stripe(t, k), &r);
    for (i = tag & r.mask, n = 0; n < PREFETCH_PROBES; n++, i = (i + 1) & r.mask) {
        apr_uint32_t slot = __atomic_load_n(&r.ix[i].slot, __ATOMIC_RELAXED);
        const unsigned char *p, *end;
        apr_uint32_t len;

        if (slot == 0 || slot > t->b) {
            break;
        }
        if (__atomic_load_n(&r.ix[i].tag, __ATOMIC_RELAXED) != tag) {
            continue;
        }
        p = (const unsigned char *)slot_at(t, r.st, slot - 1);
        len = __atomic_load_n(&((const mc_slots_slot *)p)->val_len, __ATOMIC_RELAXED);
        end = value_of((mc_slots_slot *)p) + (len < t->value_max ? len : t->value_max);
        for (; p < end; p += LINE) {
            sink ^= read_once(p);
        }
        break;
    }
    (void)sink;
}

/* Where slots fall on pages. Reading an entry costs a TLB entry (and, where memory goes
 * unread for seconds, a trip through the hypervisor) per page it spans. A slot smaller than
 * a page is "short" when less than two thirds of it lie before the next page boundary: a
 * session there would run onto a second page. Small values (spent-state markers, locks)
 * are given short slots first and large ones the others, so the entries read on every
 * request stay on one page. Only a preference: any free slot holds any value. */
#define PAGE_BYTES 4096

static int slot_is_short(const stripe_ref *r, apr_uint32_t slot)
{
    apr_uint32_t room;
    if (r->t->slot_bytes >= PAGE_BYTES) {
        return 0;
    }
    room = PAGE_BYTES
           - (apr_uint32_t)((apr_uintptr_t)slot_at(r->t, r->st, slot) & (PAGE_BYTES - 1));
    return room < r->t->slot_bytes / 3 * 2;
}

static int value_is_small(const mc_slots *t, apr_size_t len)
{
    return sizeof(mc_slots_slot) + len <= t->slot_bytes / 3;
}

/* The free list slot belongs on. */
static apr_uint32_t *free_list(const stripe_ref *r, apr_uint32_t slot)
{
    return slot_is_short(r, slot) ? &r->st->free_short : &r->st->free_head;
}

static void free_push(const stripe_ref *r, apr_uint32_t slot)
{
    mc_slots_slot *sl = slot_at(r->t, r->st, slot);
    apr_uint32_t *head = free_list(r, slot);
    sl->state = SLOT_FREE;
    sl->next_free = *head;
    *head = slot + 1;
}

static apr_uint32_t free_pop(const stripe_ref *r, apr_uint32_t *head)
{
    apr_uint32_t s = *head;
    if (s) {
        *head = slot_at(r->t, r->st, s - 1)->next_free;
    }
    return s;
}

static void slot_free(const stripe_ref *r, apr_uint32_t slot)
{
    free_push(r, slot);
    apr_atomic_dec32(&r->st->used);
}

/* Remove the index entry at i, freeing its slot, and shift the entries after it back so
 * every entry stays reachable from its home without tombstones. Only positions from i on
 * (cyclically, up to the next empty entry) change. */
static void delete_at(const stripe_ref *r, apr_uint32_t i)
{
    apr_uint32_t j = i;
    slot_free(r, r->ix[i].slot - 1);
    for (;;) {
        apr_uint32_t home;
        j = (j + 1) & r->mask;
        if (!r->ix[j].slot) {
            break;
        }
        home = r->ix[j].tag & r->mask;
        /* j's entry may fill the hole at i unless its home lies cyclically in (i, j]. */
        if (((j - home) & r->mask) >= ((j - i) & r->mask)) {
            r->ix[i] = r->ix[j];
            i = j;
        }
    }
    r->ix[i].slot = 0;
    r->ix[i].tag = 0;
    r->ix[i].expiry = 0;
}

/* Free every expired entry of the stripe. Starting just after an empty entry, entries
 * only ever shift into positions not yet visited or the one being looked at again. */
static apr_uint32_t sweep_expired(const stripe_ref *r, apr_time_t now)
{
    apr_uint32_t start = 0, n = 0, k;
    while (r->ix[start].slot) {
        start++;                        /* at most half the index is used: one is empty */
    }
    for (k = 1; k <= r->mask + 1; k++) {
        apr_uint32_t i = (start + k) & r->mask;
        while (r->ix[i].slot && r->ix[i].expiry <= now) {
            delete_at(r, i);
            n++;
        }
    }
    return n;
}

/* Evict the live entry that expires soonest. */
static void evict_soonest(const stripe_ref *r)
{
    apr_uint32_t i, best = 0;
    int found = 0;
    for (i = 0; i <= r->mask; i++) {
        if (r->ix[i].slot && (!found || r->ix[i].expiry < r->ix[best].expiry)) {
            best = i;
            found = 1;
        }
    }
    if (found) {
        delete_at(r, best);
        r->st->evictions++;             /* 64-bit: readers may see it torn on 32-bit hosts */
    }
}

/* A free slot for a value of len bytes; 0 = none, else slot + 1. First a free slot of the
 * value's kind (short for a small value), then a never-used one (one of the other kind is
 * put on its list and the next taken instead), then one of the other kind. */
static apr_uint32_t slot_take(const stripe_ref *r, apr_size_t len)
{
    int small = value_is_small(r->t, len);
    apr_uint32_t s = free_pop(r, small ? &r->st->free_short : &r->st->free_head);

    if (!s && r->st->fresh < r->t->b) {
        s = ++r->st->fresh;
        if (slot_is_short(r, s - 1) != small && r->st->fresh < r->t->b) {
            free_push(r, s - 1);
            s = ++r->st->fresh;
        }
    }
    if (!s) {
        s = free_pop(r, small ? &r->st->free_head : &r->st->free_short);
    }
    if (s) {
        apr_atomic_inc32(&r->st->used);
    }
    return s;
}

static void slot_fill(mc_slots_slot *sl, const mc_slots_key *k, apr_time_t expiry,
                      const unsigned char *val, apr_size_t len, apr_uint32_t mark)
{
    sl->tag = tag_of(k);
    sl->mark = mark;
    sl->key_len = (apr_uint32_t)k->len;
    sl->val_len = (apr_uint32_t)len;
    sl->next_free = 0;
    sl->expiry = expiry;
    memcpy(sl->key, k->key, k->len);
    memcpy(value_of(sl), val, len);
    sl->state = SLOT_USED;
}

/* The slot of k's live entry and its index position *at, or NULL (an expired one is freed
 * on the way). */
static mc_slots_slot *find_live(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                                stripe_ref *r, long *at)
{
    apr_uint32_t hole;
    long i;

    ref_of(t, mc_slots_key_stripe(t, k), r);
    if ((i = find(r, k, &hole)) < 0) {
        return NULL;
    }
    if (r->ix[i].expiry <= now) {
        delete_at(r, (apr_uint32_t)i);
        return NULL;
    }
    *at = i;
    return slot_at(t, r->st, r->ix[i].slot - 1);
}

apr_status_t mc_slots_get(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                          unsigned char *buf, apr_size_t cap, apr_size_t *len,
                          mc_slots_meta *meta)
{
    stripe_ref r;
    long i;
    mc_slots_slot *sl = find_live(t, k, now, &r, &i);

    if (!sl) {
        return APR_NOTFOUND;
    }
    if (sl->val_len > cap) {
        *len = sl->val_len;
        return APR_ENOSPC;
    }
    memcpy(buf, value_of(sl), sl->val_len);
    *len = sl->val_len;
    if (meta) {
        meta->expiry = sl->expiry;
        meta->mark = sl->mark;
    }
    return APR_SUCCESS;
}

apr_status_t mc_slots_touch(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                            apr_time_t expiry, apr_uint32_t mark)
{
    stripe_ref r;
    long i;
    mc_slots_slot *sl = find_live(t, k, now, &r, &i);

    if (!sl) {
        return APR_NOTFOUND;
    }
    sl->expiry = expiry;
    sl->mark = mark;
    r.ix[i].expiry = expiry;
    return APR_SUCCESS;
}

static apr_status_t store(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                          apr_time_t expiry, const unsigned char *val, apr_size_t len,
                          int only_if_absent)
{
    stripe_ref r;
    apr_uint32_t hole, s;
    apr_status_t rv = APR_SUCCESS;
    long i;

    if (len > t->value_max) {
        return APR_ENOSPC;
    }
    ref_of(t, mc_slots_key_stripe(t, k), &r);
    if ((i = find(&r, k, &hole)) >= 0) {
        if (only_if_absent && r.ix[i].expiry > now) {
            return APR_EEXIST;
        }
        /* Replace in place: the lock keeps every reader out until it is whole. A live
         * entry keeps its mark (the caller's note outlives a rewrite of the value). */
        mc_slots_slot *sl = slot_at(t, r.st, r.ix[i].slot - 1);
        slot_fill(sl, k, expiry, val, len, r.ix[i].expiry > now ? sl->mark : 0);
        r.ix[i].expiry = expiry;
        return APR_SUCCESS;
    }
    if (!(s = slot_take(&r, len))) {
        if (!sweep_expired(&r, now)) {
            evict_soonest(&r);
            rv = MC_SLOTS_EVICTED;
        }
        s = slot_take(&r, len);
        find(&r, k, &hole);             /* entries moved: where it goes now */
    }
    slot_fill(slot_at(t, r.st, s - 1), k, expiry, val, len, 0);
    r.ix[hole].tag = tag_of(k);
    r.ix[hole].expiry = expiry;
    r.ix[hole].slot = s;
    return rv;
}

apr_status_t mc_slots_put(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                          apr_time_t expiry, const unsigned char *val, apr_size_t len)
{
    return store(t, k, now, expiry, val, len, 0);
}

apr_status_t mc_slots_add(mc_slots *t, const mc_slots_key *k, apr_time_t now,
                          apr_time_t expiry, const unsigned char *val, apr_size_t len)
{
    return store(t, k, now, expiry, val, len, 1);
}

apr_status_t mc_slots_remove(mc_slots *t, const mc_slots_key *k, apr_time_t now)
{
    stripe_ref r;
    apr_uint32_t hole;
    apr_time_t expiry;
    long i;

    ref_of(t, mc_slots_key_stripe(t, k), &r);
    if ((i = find(&r, k, &hole)) < 0) {
        return APR_NOTFOUND;
    }
    expiry = r.ix[i].expiry;
    delete_at(&r, (apr_uint32_t)i);
    return expiry > now ? APR_SUCCESS : APR_NOTFOUND;
}

void mc_slots_stats(const mc_slots *t, mc_slots_stats_t *st)
{
    unsigned s;
    st->entries = t->h->entries;
    st->slots = t->stripes * t->b;
    st->stripes = t->stripes;
    st->value_max = t->value_max;
    st->used = 0;
    st->evictions = 0;
    st->rebuilds = apr_atomic_read32(&t->h->rebuilds);
    for (s = 0; s < t->stripes; s++) {
        mc_slots_stripe *sp = stripe_at(t, s);
        st->used += apr_atomic_read32(&sp->used);
        st->evictions += *(volatile apr_uint64_t *)&sp->evictions;
    }
}

/* ---- repair ---- */

apr_status_t mc_slots_stripe_verify(const mc_slots *t, unsigned stripe)
{
    stripe_ref r;
    apr_uint32_t i, n = 0, used = 0, free_n = 0, f;
    int k;

    if (stripe >= t->stripes) {
        return APR_EINVAL;
    }
    ref_of((mc_slots *)t, stripe, &r);
    if (r.st->fresh > t->b) {
        return APR_EGENERAL;
    }
    for (i = 0; i <= r.mask; i++) {
        mc_slots_ix *e = &r.ix[i];
        mc_slots_slot *sl;
        apr_uint32_t j;
        if (!e->slot) {
            continue;
        }
        n++;
        if (e->slot > r.st->fresh) {
            return APR_EGENERAL;
        }
        sl = slot_at(t, r.st, e->slot - 1);
        if (sl->state != SLOT_USED || sl->tag != e->tag || sl->expiry != e->expiry
            || sl->key_len == 0 || sl->key_len > MC_SLOTS_KEY_MAX
            || sl->val_len > t->value_max) {
            return APR_EGENERAL;
        }
        /* reachable: no empty entry between its home and it */
        for (j = e->tag & r.mask; j != i; j = (j + 1) & r.mask) {
            if (!r.ix[j].slot) {
                return APR_EGENERAL;
            }
        }
    }
    for (i = 0; i < r.st->fresh; i++) {
        used += slot_at(t, r.st, i)->state == SLOT_USED;
    }
    for (k = 0; k < 2; k++) {
        for (f = k ? r.st->free_short : r.st->free_head; f;
             f = slot_at(t, r.st, f - 1)->next_free) {
            if (f > r.st->fresh || slot_at(t, r.st, f - 1)->state != SLOT_FREE
                || ++free_n > r.st->fresh) {
                return APR_EGENERAL;
            }
        }
    }
    if (n != used || used + free_n != r.st->fresh || apr_atomic_read32(&r.st->used) != n) {
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

void mc_slots_stripe_rebuild(mc_slots *t, unsigned stripe)
{
    stripe_ref r;
    apr_uint32_t i, fresh, used = 0;

    if (stripe >= t->stripes) {
        return;
    }
    ref_of(t, stripe, &r);
    fresh = r.st->fresh > t->b ? t->b : r.st->fresh;
    /* Emptied as at create, but the slots ever used are kept to be sorted out below. */
    stripe_reset(t, r.st);
    r.st->fresh = fresh;
    /* Backwards, so the free lists hand out low slots first. */
    for (i = fresh; i-- > 0;) {
        mc_slots_slot *sl = slot_at(t, r.st, i);
        mc_slots_key k;
        apr_uint32_t hole;
        char key[MC_SLOTS_KEY_MAX + 1];
        long at;
        int keep = 0;

        if (sl->state == SLOT_USED && sl->key_len > 0 && sl->key_len <= MC_SLOTS_KEY_MAX
            && sl->val_len <= t->value_max && !memchr(sl->key, 0, sl->key_len)) {
            memcpy(key, sl->key, sl->key_len);
            key[sl->key_len] = '\0';
            mc_slots_key_make(t, key, &k);
            keep = mc_slots_key_stripe(t, &k) == stripe;
        }
        if (keep && (at = find(&r, &k, &hole)) >= 0) {
            /* A key twice (cut short while replacing): keep the later expiry. */
            mc_slots_slot *other = slot_at(t, r.st, r.ix[at].slot - 1);
            if (other->expiry >= sl->expiry) {
                keep = 0;
            }
            else {
                free_push(&r, r.ix[at].slot - 1);
                r.ix[at].slot = i + 1;
                r.ix[at].expiry = sl->expiry;
                sl->tag = tag_of(&k);
                continue;
            }
        }
        if (!keep) {
            free_push(&r, i);
            continue;
        }
        sl->tag = tag_of(&k);
        r.ix[hole].tag = sl->tag;
        r.ix[hole].slot = i + 1;
        r.ix[hole].expiry = sl->expiry;
        used++;
    }
    apr_atomic_set32(&r.st->used, used);
    apr_atomic_inc32(&t->h->rebuilds);
    if (t->rebuilt) {
        t->rebuilt(t->rebuilt_baton, stripe, used);
    }
}

void mc_slots_on_rebuild(mc_slots *t, mc_slots_rebuilt_fn *fn, void *baton)
{
    t->rebuilt = fn;
    t->rebuilt_baton = baton;
}
