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
typedef struct vrules_state_info {
    size_t used;
    size_t limit;
    int enforce;
    int memory_exceeded;
} vrules_state_info;

/// The limits of one evaluation, reached from the running thread's extra space.
typedef struct vrules_budget {
    int64_t remaining;      /* instructions left */
    double deadline;        /* CLOCK_MONOTONIC seconds; 0 = none */
    int exceeded;           /* one of VRULES_EXCEEDED_* */
    int64_t evaluation_id;  /* lets the host find the evaluation a host call belongs to */
} vrules_budget;

enum {
    VRULES_EXCEEDED_NONE = 0,
    VRULES_EXCEEDED_INSTRUCTIONS = 1,
    VRULES_EXCEEDED_DEADLINE = 2,
    VRULES_EXCEEDED_MEMORY = 3,
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

lua_State *vrules_newstate(vrules_state_info *info);
vrules_state_info *vrules_info(lua_State *L);
double vrules_now(void);

void vrules_set_dispatch(vrules_host_dispatch_fn fn);
/// Pushes a C closure that calls the host dispatcher with `function_id`.
void vrules_push_host_function(lua_State *L, void *host, int function_id);

void vrules_set_budget(lua_State *L, vrules_budget *budget);
vrules_budget *vrules_get_budget(lua_State *L);
/// Installs the count hook (inherited by threads created afterwards).
void vrules_install_hook(lua_State *L);

/// Loads a text chunk (never bytecode). Returns a Lua status; on error the message is on top.
int vrules_load_text(lua_State *L, const char *text, size_t length, const char *chunkname);

/// Replaces the value at `index` by its string form, computed under a protected call;
/// a failing `__tostring` gives a fixed description instead of an error.
void vrules_tostring(lua_State *L, int index);

/// Pushes the standard libraries the sandbox draws from into a fresh table (protected).
int vrules_open_libraries(lua_State *L);

/// lua_pcall from Swift: protected, returns the status.
int vrules_pcall(lua_State *L, int nargs, int nresults);

/// Macro wrappers.
void vrules_pop(lua_State *L, int n);
void vrules_newtable(lua_State *L);
int vrules_upvalueindex(int i);
int vrules_registryindex(void);
int vrules_isnoneornil(lua_State *L, int index);
const char *vrules_tolstring(lua_State *L, int index, size_t *length);

void vrules_gc_collect(lua_State *L);
int vrules_gc_count_kb(lua_State *L);

#endif
