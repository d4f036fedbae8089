#include "CLuaShim.h"
#include "vrules_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <time.h>

/* Small blocks: size classes of 16 bytes, each block malloc'ed at its class's size and kept
 * on its class's free list when Lua frees it, up to VRULES_SMALL_CACHE_BYTES per state.
 * Lua allocates and frees tens of small objects per stage (strings, tables, closures), and
 * glibc's per-thread cache holds only seven blocks of a size. A block is kept only if
 * malloc_usable_size says it is its class's (a shrunk larger block is not). */
#define VRULES_SMALL_STEP 16
#define VRULES_SMALL_MAX (VRULES_SMALL_CLASSES * VRULES_SMALL_STEP)

static inline size_t small_class(size_t size) { return (size - 1) / VRULES_SMALL_STEP; }
static inline size_t class_bytes(size_t class) { return (class + 1) * VRULES_SMALL_STEP; }

static void *small_take(vrules_state_info *info, size_t size) {
    size_t class = small_class(size);
    void *block = info->small_blocks[class];
    if (block != NULL) {
        info->small_blocks[class] = *(void **)block;
        info->small_cached -= class_bytes(class);
        return block;
    }
    return malloc(class_bytes(class));
}

static void small_give(vrules_state_info *info, void *block, size_t size) {
    size_t class = small_class(size);
    size_t usable = malloc_usable_size(block);
    if (info->small_cached + class_bytes(class) <= VRULES_SMALL_CACHE_BYTES
        && usable >= class_bytes(class) && usable < class_bytes(class) + VRULES_SMALL_STEP) {
        *(void **)block = info->small_blocks[class];
        info->small_blocks[class] = block;
        info->small_cached += class_bytes(class);
    } else {
        free(block);
    }
}

void vrules_release_small_blocks(vrules_state_info *info) {
    for (size_t class = 0; class < VRULES_SMALL_CLASSES; class++) {
        void *block = info->small_blocks[class];
        while (block != NULL) {
            void *next = *(void **)block;
            free(block);
            block = next;
        }
        info->small_blocks[class] = NULL;
    }
    info->small_cached = 0;
}

/* A block of `nsize` bytes for `ptr` (of `old` bytes, 0 for none), its contents kept. */
static void *resize_block(vrules_state_info *info, void *ptr, size_t old, size_t nsize) {
    if (ptr == NULL) return nsize <= VRULES_SMALL_MAX ? small_take(info, nsize) : malloc(nsize);
    if (old <= VRULES_SMALL_MAX && nsize <= VRULES_SMALL_MAX && small_class(old) == small_class(nsize)) return ptr;
    if (nsize <= VRULES_SMALL_MAX) {
        void *block = small_take(info, nsize);
        /* A shrink must not fail: the larger block serves (and is freed, not kept, later). */
        if (block == NULL) return nsize < old ? ptr : NULL;
        memcpy(block, ptr, nsize < old ? nsize : old);
        if (old <= VRULES_SMALL_MAX) small_give(info, ptr, old); else free(ptr);
        return block;
    }
    void *block = realloc(ptr, nsize);
    if (block == NULL && nsize < old) return ptr;
    return block;
}

/* The allocator: counts every byte; while a script runs, refuses growth past the memory cap
 * or past the budget (growth is charged to it). Shrinking never fails: Lua's collector
 * shrinks blocks and is not reentrant. */
static void *vrules_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    vrules_state_info *info = (vrules_state_info *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr != NULL) {
            if (old <= VRULES_SMALL_MAX) small_give(info, ptr, old); else free(ptr);
        }
        info->used -= old;
        return NULL;
    }
    if (info->enforce && nsize > old) {
        info->allocations++;
        /* Tests: the chosen allocation fails, and so does Lua's retry after its emergency
         * collection, as when malloc itself has nothing left. */
        if (info->fail_at > 0 && info->allocations >= info->fail_at && info->allocations <= info->fail_at + 1) return NULL;
        if (info->limit > 0 && info->used - old + nsize > info->limit) {
            info->memory_exceeded = 1;
            return NULL;
        }
        vrules_budget *budget = info->charged;
        if (budget != NULL) {
            size_t growth = nsize - old;
            budget->remaining -= (int64_t)(growth / VRULES_BYTES_PER_UNIT);
            if (budget->remaining < 0 && budget->exceeded == VRULES_EXCEEDED_NONE) {
                budget->exceeded = VRULES_EXCEEDED_INSTRUCTIONS;
                /* lua_sethook only sets fields (it is safe from a signal handler, so here too):
                 * the next instruction raises the error that pcall cannot swallow. */
                if (info->running != NULL) lua_sethook(info->running, vrules_hook, LUA_MASKCOUNT, 1);
                return NULL;
            }
            /* Past a limit, a library call that goes on building fails at its next growth;
             * small blocks still come, for the error message and the unwinding. */
            if (budget->exceeded != VRULES_EXCEEDED_NONE && growth > VRULES_UNWIND_ALLOWANCE) return NULL;
        }
    }
    void *block = resize_block(info, ptr, old, nsize);
    if (block == NULL) return NULL;
    info->used = info->used - old + nsize;
    return block;
}

static vrules_host_dispatch_fn vrules_dispatch = NULL;

/* Every Lua error is raised inside a protected call or resume; reaching here is a bug in
 * vrules. Name it and stop, rather than let Lua call abort() with no word. */
static int vrules_panic(lua_State *L) {
    const char *message = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(a non-string error object)";
    fprintf(stderr, "vrules: fatal: a Lua error escaped every protected call (a bug in vrules): %s\n", message);
    fflush(stderr);
    abort();
    return 0;
}

lua_State *vrules_newstate(vrules_state_info *info) {
    lua_State *L = lua_newstate(vrules_alloc, info);
    if (L != NULL) lua_atpanic(L, vrules_panic);
    return L;
}

vrules_state_info *vrules_info(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (vrules_state_info *)ud;
}

double vrules_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void vrules_set_dispatch(vrules_host_dispatch_fn fn) { vrules_dispatch = fn; }

/* Continuation of a host function that yielded: the host resumed the coroutine with
 * (ok, values...). Raising here, in C, is what lets a DNS error reach the rule's pcall. */
static int vrules_host_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    int base = (int)ctx;
    int n = lua_gettop(L) - base;
    if (n < 1) return luaL_error(L, "host call resumed without a result");
    if (lua_toboolean(L, base + 1)) return n - 1;
    lua_settop(L, base + 2);
    return lua_error(L);
}

/* Pushes "chunk:line: " of the first caller outside the prelude (chunk "=vrules"), so that an
 * error from a host function reached through a prelude wrapper (spf.check_host, ctx.add_header)
 * names the script's line, not the wrapper's ("vrules:286:"). As luaL_where(L, 1) when the
 * stack holds nothing else. */
static void vrules_where(lua_State *L) {
    lua_Debug ar;
    for (int level = 1; level < 16 && lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar)) break;
        if (strcmp(ar.source, "=vrules") == 0) continue;
        if (ar.currentline > 0) lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
        else lua_pushliteral(L, "");  /* a C caller (pcall): no line, as luaL_where gives */
        return;
    }
    luaL_where(L, 1);
}

static int vrules_trampoline(lua_State *L) {
    void *host = lua_touserdata(L, lua_upvalueindex(1));
    int function_id = (int)lua_tointeger(L, lua_upvalueindex(2));
    vrules_state_info *info = vrules_info(L);
    if (vrules_dispatch == NULL) return luaL_error(L, "host dispatcher not installed");
    if (!lua_checkstack(L, 16)) return luaL_error(L, "stack overflow in host call");
    int enforce = info->enforce;
    info->enforce = 0;
    int base = lua_gettop(L);
    int result = vrules_dispatch(host, function_id, L);
    info->enforce = enforce;
    switch (result) {
    case VRULES_HOST_ERROR:
        vrules_where(L);
        lua_insert(L, -2);
        lua_concat(L, 2);
        return lua_error(L);
    case VRULES_HOST_RAISE:
        return lua_error(L);
    case VRULES_HOST_YIELD:
        /* RuleHost refuses a DNS call that cannot yield before starting it; kept so that no
         * host function can ever yield across a C call. */
        if (!lua_isyieldable(L)) return luaL_error(L, "a host function cannot wait for DNS here");
        lua_settop(L, base);
        return lua_yieldk(L, 0, (lua_KContext)base, vrules_host_continue);
    default:
        return result;
    }
}

void vrules_push_host_function(lua_State *L, void *host, int function_id) {
    lua_pushlightuserdata(L, host);
    lua_pushinteger(L, function_id);
    lua_pushcclosure(L, vrules_trampoline, 2);
}

void vrules_set_budget(lua_State *L, vrules_budget *budget) {
    memcpy(lua_getextraspace(L), &budget, sizeof(budget));
}

vrules_budget *vrules_get_budget(lua_State *L) {
    vrules_budget *budget;
    memcpy(&budget, lua_getextraspace(L), sizeof(budget));
    return budget;
}

/* Sets `exceeded` when a limit has passed; returns whether one has. */
static int vrules_limits_passed(lua_State *L, vrules_budget *budget) {
    if (budget->exceeded != VRULES_EXCEEDED_NONE) return 1;
    if (budget->remaining < 0) {
        budget->exceeded = VRULES_EXCEEDED_INSTRUCTIONS;
    } else if (vrules_info(L)->memory_exceeded) {
        budget->exceeded = VRULES_EXCEEDED_MEMORY;
    } else if (budget->deadline > 0 || budget->run_limit > 0) {
        double now = vrules_now();
        if (budget->deadline > 0 && now > budget->deadline) {
            budget->exceeded = VRULES_EXCEEDED_DEADLINE;
        } else if (budget->run_limit > 0 && budget->resumed_at > 0 &&
                   budget->run_used + (now - budget->resumed_at) > budget->run_limit) {
            budget->exceeded = VRULES_EXCEEDED_RUN_TIME;
        } else {
            return 0;
        }
    } else {
        return 0;
    }
    return 1;
}

static int vrules_raise_limit(lua_State *L, vrules_budget *budget) {
    lua_sethook(L, vrules_hook, LUA_MASKCOUNT, 1);
    switch (budget->exceeded) {
    case VRULES_EXCEEDED_INSTRUCTIONS: return luaL_error(L, "instruction budget exceeded");
    case VRULES_EXCEEDED_DEADLINE: return luaL_error(L, "stage deadline exceeded");
    case VRULES_EXCEEDED_RUN_TIME: return luaL_error(L, "stage run time exceeded");
    default: return luaL_error(L, "memory limit exceeded");
    }
}

/* Once a limit is passed the hook fires on every instruction, so a script that catches
 * the error with pcall gets it again at its very next instruction. */
void vrules_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    vrules_budget *budget = vrules_get_budget(L);
    if (budget == NULL) return;
    if (budget->exceeded == VRULES_EXCEEDED_NONE) {
        budget->remaining -= VRULES_HOOK_COUNT;
        if (!vrules_limits_passed(L, budget)) return;
    }
    vrules_raise_limit(L, budget);
}

void vrules_charge(lua_State *L, int64_t units) {
    vrules_budget *budget = vrules_get_budget(L);
    if (budget == NULL) return;
    budget->remaining -= units;
    /* The clock is read once per VRULES_HOOK_COUNT units, as the count hook reads it once per
     * VRULES_HOOK_COUNT instructions: small library calls (most are) then cost no clock read. */
    budget->unclocked += units;
    if (budget->exceeded == VRULES_EXCEEDED_NONE && budget->remaining >= 0 && budget->unclocked < VRULES_HOOK_COUNT &&
        !vrules_info(L)->memory_exceeded) return;
    budget->unclocked = 0;
    if (!vrules_limits_passed(L, budget)) return;
    vrules_raise_limit(L, budget);
}

vrules_enforcement vrules_enforce_begin(lua_State *thread) {
    vrules_state_info *info = vrules_info(thread);
    vrules_enforcement saved = { info->enforce, info->charged, info->running };
    vrules_budget *budget = vrules_get_budget(thread);
    info->enforce = 1;
    info->charged = budget;
    info->running = thread;
    if (budget != NULL && budget->resumed_at == 0) budget->resumed_at = vrules_now();
    return saved;
}

void vrules_enforce_end(lua_State *thread, vrules_enforcement saved) {
    vrules_state_info *info = vrules_info(thread);
    vrules_budget *budget = vrules_get_budget(thread);
    if (budget != NULL && budget->resumed_at > 0) {
        budget->run_used += vrules_now() - budget->resumed_at;
        budget->resumed_at = 0;
    }
    info->enforce = saved.enforce;
    info->charged = saved.charged;
    info->running = saved.running;
}

int vrules_resume(lua_State *from, lua_State *co, int nargs, int *nresults) {
    vrules_enforcement saved = vrules_enforce_begin(co);
    int status = lua_resume(co, from, nargs, nresults);
    vrules_enforce_end(co, saved);
    return status;
}

void vrules_install_hook(lua_State *L) {
    lua_sethook(L, vrules_hook, LUA_MASKCOUNT, VRULES_HOOK_COUNT);
}

int vrules_load_text(lua_State *L, const char *text, size_t length, const char *chunkname) {
    return luaL_loadbufferx(L, text, length, chunkname, "t");
}

/* Everything that can raise or allocate runs here, under the protected call. */
static int vrules_tostring_protected(lua_State *L) {
    int type = lua_type(L, 1);
    if (type != LUA_TSTRING && type != LUA_TNUMBER && type != LUA_TBOOLEAN && type != LUA_TNIL) {
        if (luaL_getmetafield(L, 1, "__tostring") == LUA_TNIL) {
            lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
            return 1;
        }
        lua_pop(L, 1);
    }
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int vrules_tostring(lua_State *L, int index) {
    index = lua_absindex(L, index);
    if (!lua_checkstack(L, 3)) return 0;
    lua_pushcfunction(L, vrules_tostring_protected);
    lua_pushvalue(L, index);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        return 0;
    }
    lua_replace(L, index);
    return 1;
}

static int vrules_open_libraries_protected(lua_State *L) {
    luaL_requiref(L, "_G", luaopen_base, 1);
    luaL_requiref(L, "string", luaopen_string, 1);
    luaL_requiref(L, "table", luaopen_table, 1);
    luaL_requiref(L, "math", luaopen_math, 1);
    luaL_requiref(L, "utf8", luaopen_utf8, 1);
    luaL_requiref(L, "os", luaopen_os, 1);
    lua_pop(L, 6);
    return 0;
}

int vrules_open_libraries(lua_State *L) {
    lua_pushcfunction(L, vrules_open_libraries_protected);
    return lua_pcall(L, 0, 0, 0);
}

int vrules_pcall(lua_State *L, int nargs, int nresults) { return lua_pcall(L, nargs, nresults, 0); }
int vrules_checkstack(lua_State *L, int n) { return lua_checkstack(L, n); }
void vrules_pop(lua_State *L, int n) { lua_pop(L, n); }
void vrules_newtable(lua_State *L) { lua_newtable(L); }
int vrules_upvalueindex(int i) { return lua_upvalueindex(i); }
int vrules_registryindex(void) { return LUA_REGISTRYINDEX; }
int vrules_isnoneornil(lua_State *L, int index) { return lua_isnoneornil(L, index); }
const char *vrules_tolstring(lua_State *L, int index, size_t *length) {
    if (lua_type(L, index) != LUA_TSTRING) return NULL;
    return lua_tolstring(L, index, length);
}
void vrules_gc_collect(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }
void vrules_gc_generational(lua_State *L) { lua_gc(L, LUA_GCGEN, 0, 0); }
int vrules_gc_count_kb(lua_State *L) { return lua_gc(L, LUA_GCCOUNT); }
