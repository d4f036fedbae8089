#ifndef VRULES_CLUASHIM_H
#define VRULES_CLUASHIM_H

#include <stddef.h>
#include <stdint.h>
#include <lua5.4/lua.h>
#include <lua5.4/lualib.h>
#include <lua5.4/lauxlib.h>

/// Per-state bookkeeping owned by the C side: the allocator's accounting and cap.
/// `enforce` is cleared while the host (Swift) pushes values, so that an allocation made
/// from a Swift frame can never fail and raise: only script code can hit the cap.
/// While a script runs, growth allocations are also charged to `charged`, the running
/// evaluation's budget: the bytes a library call builds count as work (see docs/lua-api.md,
/// "Limits"), so quadratic concatenation stops at the budget, not at the deadline.
typedef struct vrules_budget vrules_budget;

/* Blocks of up to VRULES_SMALL_CLASSES * 16 bytes (most of what Lua allocates: strings,
 * table headers, closures) come from free lists of their size class, kept per state. */
#define VRULES_SMALL_CLASSES 16
#define VRULES_SMALL_CACHE_BYTES (1 << 20)

typedef struct vrules_state_info {
    size_t used;
    size_t limit;
    int enforce;
    int memory_exceeded;
    vrules_budget *charged;     /* the budget script allocations are charged to, or NULL */
    lua_State *running;         /* the thread running under `charged` (its hook is armed on overrun) */
    int64_t allocations;        /* growth allocations made by scripts so far */
    int64_t fail_at;            /* tests: the fail_at-th script allocation fails (0 = never) */
    void *small_blocks[VRULES_SMALL_CLASSES]; /* freed small blocks kept for reuse, by size class */
    size_t small_cached;        /* the bytes they hold (at most VRULES_SMALL_CACHE_BYTES) */
} vrules_state_info;

/// The limits of one evaluation, reached from the running thread's extra space.
struct vrules_budget {
    int64_t remaining;      /* instructions left (library work and allocated bytes included) */
    double deadline;        /* CLOCK_MONOTONIC seconds; 0 = none */
    double run_limit;       /* seconds the script may run, DNS waits excluded; 0 = none */
    double run_used;        /* seconds run in earlier resumes */
    double resumed_at;      /* when the current run began; 0 while suspended */
    int exceeded;           /* one of VRULES_EXCEEDED_* */
    void *owner;            /* the host's object for this evaluation */
    int64_t unclocked;      /* units charged by library calls since the clock was last read */
};

enum {
    VRULES_EXCEEDED_NONE = 0,
    VRULES_EXCEEDED_INSTRUCTIONS = 1,
    VRULES_EXCEEDED_DEADLINE = 2,
    VRULES_EXCEEDED_MEMORY = 3,
    VRULES_EXCEEDED_RUN_TIME = 4,
};

/// Status codes a host callback returns; the trampoline acts on them.
/// A value >= 0 is a number of results on the stack top.
enum {
    VRULES_HOST_ERROR = -1,        /* a message on the stack top: raise it with the caller's position */
    VRULES_HOST_RAISE = -2,        /* a value on the stack top: raise it as is */
    VRULES_HOST_YIELD = -3,        /* suspend the coroutine; the host resumes it with (ok, values...) */
};

#define VRULES_HOOK_COUNT 1000

typedef int (*vrules_host_dispatch_fn)(void *host, int function_id, lua_State *L);

/// A new state counting its memory in `info`, with a panic handler that names the failure.
lua_State *vrules_newstate(vrules_state_info *info);
/// Frees the small blocks kept for reuse (after lua_close).
void vrules_release_small_blocks(vrules_state_info *info);
vrules_state_info *vrules_info(lua_State *L);
double vrules_now(void);

void vrules_set_dispatch(vrules_host_dispatch_fn fn);
/// Pushes a C closure that calls the host dispatcher with `function_id`.
void vrules_push_host_function(lua_State *L, void *host, int function_id);

void vrules_set_budget(lua_State *L, vrules_budget *budget);
vrules_budget *vrules_get_budget(lua_State *L);
/// Installs the count hook (inherited by threads created afterwards).
void vrules_install_hook(lua_State *L);

/// What `vrules_enforce_begin` changed, to be restored by `vrules_enforce_end`.
typedef struct vrules_enforcement {
    int enforce;
    vrules_budget *charged;
    lua_State *running;
} vrules_enforcement;

/// Script code is about to run on `thread`: the memory cap applies and allocations are
/// charged to the thread's budget, whose run-time clock starts.
vrules_enforcement vrules_enforce_begin(lua_State *thread);
void vrules_enforce_end(lua_State *thread, vrules_enforcement saved);

/// lua_resume under enforcement (see vrules_enforce_begin).
int vrules_resume(lua_State *from, lua_State *co, int nargs, int *nresults);

/// Pushes the sandbox's C library (protected): a table with `string` (find, match, gmatch,
/// gsub, rep whose work is charged), `table` (insert, remove, move, sort, concat, unpack,
/// charged by the elements they walk), `readonly`, `is_readonly` and `charge`.
/// Returns a Lua status; on error the message is on top.
int vrules_push_sandbox_library(lua_State *L);

/// Pushes a read-only proxy of the table at `index`: reads and iteration reach the table,
/// nothing gives the table itself away. `name` names it in error messages.
void vrules_push_readonly(lua_State *L, int index, const char *name);
/// `t[key] = top` without metamethods for the table at `index`; pops the value. `key` is a
/// C string the caller keeps (a literal): Lua's string cache finds it by address.
void vrules_set_field(lua_State *L, int index, const char *key);
/// Makes the read-only proxy at `index` unusable: reading, iterating or measuring it raises
/// an error that says its transaction has ended, and the table behind it can be collected.
/// Allocates nothing and cannot raise.
void vrules_expire_readonly(lua_State *L, int index);
/// Whether the value at `index` is a read-only proxy.
int vrules_is_readonly(lua_State *L, int index);
/// Pushes the table the read-only proxy at `index` shows and returns 1; pushes nothing and
/// returns 0 when the value is not such a proxy. For the host only: rules never get it.
int vrules_push_readonly_target(lua_State *L, int index);
/* Pushes a read-only proxy of { address, local_part, domain }. */
void vrules_push_address(lua_State *L, const char *address, size_t address_length,
                         const char *local_part, size_t local_part_length,
                         const char *domain, size_t domain_length);

/// Loads a text chunk (never bytecode). Returns a Lua status; on error the message is on top.
int vrules_load_text(lua_State *L, const char *text, size_t length, const char *chunkname);

/// Replaces the value at `index` by its string form, computed under a protected call
/// (metafield lookup included) and returns 1; returns 0, leaving the value, when it has no
/// usable string form (a failing or non-string `__tostring`, no memory, no stack).
int vrules_tostring(lua_State *L, int index);

/// Pushes the standard libraries the sandbox draws from into a fresh table (protected).
int vrules_open_libraries(lua_State *L);

/// lua_pcall from Swift: protected, returns the status.
int vrules_pcall(lua_State *L, int nargs, int nresults);
/// lua_checkstack: never raises; 0 when the stack cannot grow by `n`.
int vrules_checkstack(lua_State *L, int n);

/// Macro wrappers.
void vrules_pop(lua_State *L, int n);
void vrules_newtable(lua_State *L);
int vrules_upvalueindex(int i);
int vrules_registryindex(void);
int vrules_isnoneornil(lua_State *L, int index);
const char *vrules_tolstring(lua_State *L, int index, size_t *length);

void vrules_gc_collect(lua_State *L);
/// Switches the collector to generational mode (most of a stage's objects die young).
void vrules_gc_generational(lua_State *L);
int vrules_gc_count_kb(lua_State *L);

#endif
