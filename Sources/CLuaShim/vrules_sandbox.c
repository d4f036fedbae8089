/*
 * The sandbox's C library: read-only proxies, and the library functions whose work inside
 * one C call is charged to the stage budget (the count hook never fires inside C).
 */
#include "CLuaShim.h"
#include "vrules_internal.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- read-only proxies */

/* A proxy is an empty table whose metatable holds the real table as `__index`. The metatable
 * is hidden (`__metatable = false`), iteration goes through a closure that never returns the
 * table, and writes raise. Reads stay a plain table lookup. */

static int readonly_newindex(lua_State *L) {
    const char *what = "table";
    if (lua_getmetatable(L, 1)) {
        lua_pushliteral(L, "__name");
        if (lua_rawget(L, -2) == LUA_TSTRING) what = lua_tostring(L, -1);
    }
    return luaL_error(L, "attempt to modify read-only %s (field '%s')", what, luaL_tolstring(L, 2, NULL));
}

/* Pushes the table behind the proxy at `index` (raw metatable access: never raises). */
static int push_backing(lua_State *L, int index) {
    if (!lua_getmetatable(L, index)) return 0;
    lua_pushliteral(L, "__index");
    if (lua_rawget(L, -2) != LUA_TTABLE) {
        lua_pop(L, 2);
        return 0;
    }
    lua_remove(L, -2);
    return 1;
}

static int readonly_next(lua_State *L) {
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    if (lua_next(L, 3)) return 2;
    lua_pushnil(L);
    return 1;
}

static int readonly_pairs(lua_State *L) {
    if (!push_backing(L, 1)) return luaL_error(L, "not a read-only table");
    lua_pushcclosure(L, readonly_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int readonly_len(lua_State *L) {
    if (!push_backing(L, 1)) return luaL_error(L, "not a read-only table");
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

void vrules_push_readonly(lua_State *L, int index, const char *name) {
    index = lua_absindex(L, index);
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 6);
    lua_pushvalue(L, index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, readonly_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, readonly_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, readonly_len);
    lua_setfield(L, -2, "__len");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_setmetatable(L, -2);
}

/* An ended transaction's ctx: a rule that kept it (in a top-level table) would otherwise go
 * on reading that transaction's client and sender as if they were the current one's. */
static int expired_context(lua_State *L) {
    const char *field = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    return luaL_error(L, "this ctx belongs to a transaction that has ended%s%s%s: a rule gets its own transaction's ctx "
                      "as its argument; keep what later transactions need in a table of your own",
                      field ? " (field '" : "", field ? field : "", field ? "')" : "");
}

void vrules_expire_readonly(lua_State *L, int index) {
    if (!vrules_is_readonly(L, index)) return;
    lua_getmetatable(L, index);
    /* Each key is already in the metatable: the writes allocate nothing and cannot raise. */
    static const char *const uses[] = {"__index", "__pairs", "__len"};
    for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++) {
        lua_pushstring(L, uses[i]);
        lua_pushcfunction(L, expired_context);
        lua_rawset(L, -3);
    }
    lua_pop(L, 1);
}

/* A mail address as rules see it (`ctx.mail_from`, `ctx.rcpt`, `ctx.rcpts[i]`): a read-only
 * proxy of { address, local_part, domain }, made in one call (it is made for every address of
 * every transaction). */
void vrules_push_address(lua_State *L, const char *address, size_t address_length,
                         const char *local_part, size_t local_part_length,
                         const char *domain, size_t domain_length) {
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, address, address_length);
    lua_setfield(L, -2, "address");
    lua_pushlstring(L, local_part, local_part_length);
    lua_setfield(L, -2, "local_part");
    lua_pushlstring(L, domain, domain_length);
    lua_setfield(L, -2, "domain");
    vrules_push_readonly(L, -1, "address");
    lua_rotate(L, -2, 1);
    lua_pop(L, 1);
}

int vrules_is_readonly(lua_State *L, int index) {
    if (!lua_getmetatable(L, index)) return 0;
    lua_pushliteral(L, "__newindex");
    lua_rawget(L, -2);
    int result = lua_tocfunction(L, -1) == readonly_newindex;
    lua_pop(L, 2);
    return result;
}

void vrules_set_field(lua_State *L, int index, const char *key) {
    index = lua_absindex(L, index);
    lua_pushstring(L, key);
    lua_rotate(L, -2, 1);
    lua_rawset(L, index);
}

int vrules_push_readonly_target(lua_State *L, int index) {
    index = lua_absindex(L, index);
    if (!vrules_is_readonly(L, index)) return 0;
    lua_getmetatable(L, index);
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

static int sandbox_readonly(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *name = luaL_optstring(L, 2, "table");
    vrules_push_readonly(L, 1, name);
    return 1;
}

static int sandbox_is_readonly(lua_State *L) {
    lua_pushboolean(L, vrules_is_readonly(L, 1));
    return 1;
}

/* The running coroutine, for the prelude's state kept per coroutine (the modules each one is
 * loading): the state has no coroutine library. */
static int sandbox_running(lua_State *L) {
    lua_pushthread(L);
    return 1;
}

/* Where a Lua function is defined ("source", line), for `vrules check` to find a rule's
 * code in the compiled chunk; nil for a C function. */
static int sandbox_defined(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_Debug ar;
    lua_pushvalue(L, 1);
    if (!lua_getinfo(L, ">S", &ar) || ar.linedefined <= 0) return 0;
    lua_pushstring(L, ar.source);
    lua_pushinteger(L, ar.linedefined);
    return 2;
}

static int sandbox_charge(lua_State *L) {
    lua_Integer units = luaL_checkinteger(L, 1);
    if (units > 0) vrules_charge(L, units);
    return 0;
}

/* ---------------------------------------------------------------- charged table functions */

enum { T_INSERT, T_REMOVE, T_MOVE, T_SORT, T_CONCAT, T_UNPACK };

static int integer_arg(lua_State *L, int index, lua_Integer fallback, lua_Integer *out) {
    if (lua_isnoneornil(L, index)) {
        *out = fallback;
        return 1;
    }
    int isnum = 0;
    *out = lua_tointegerx(L, index, &isnum);
    return isnum;
}

/* How many elements the call will walk, from its arguments; 0 when the arguments are such
 * that the library function itself will refuse them (it then raises its own error). */
static double walked_elements(lua_State *L, int kind, int nargs) {
    lua_Integer a, b;
    switch (kind) {
    case T_MOVE:
        if (!integer_arg(L, 2, 0, &a) || !integer_arg(L, 3, 0, &b) || b < a) return 0;
        return (double)b - (double)a + 1;
    default:
        break;
    }
    if (lua_type(L, 1) != LUA_TTABLE) return 0;
    lua_Integer length = luaL_len(L, 1);
    switch (kind) {
    case T_INSERT:
        if (nargs != 3 || !integer_arg(L, 2, 0, &a)) return 0;
        return (double)length - (double)a + 1;
    case T_REMOVE:
        if (!integer_arg(L, 2, length, &a)) return 0;
        return fabs((double)length - (double)a) + 1;
    case T_SORT:
        return length > 1 ? (double)length * (log2((double)length) + 1) : 0;
    case T_CONCAT:
        if (!integer_arg(L, 3, 1, &a) || !integer_arg(L, 4, length, &b) || b < a) return 0;
        return (double)b - (double)a + 1;
    case T_UNPACK:
        if (!integer_arg(L, 2, 1, &a) || !integer_arg(L, 3, length, &b) || b < a) return 0;
        return (double)b - (double)a + 1;
    default:
        return 0;
    }
}

static int charged_table_function(lua_State *L) {
    int kind = (int)lua_tointeger(L, lua_upvalueindex(2));
    int nargs = lua_gettop(L);
    double cost = walked_elements(L, kind, nargs);
    lua_settop(L, nargs);
    if (cost > 0) vrules_charge(L, cost >= 9.0e18 ? INT64_MAX : (int64_t)cost);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L);
}

static void push_charged(lua_State *L, int library, const char *name, int kind) {
    lua_getfield(L, library, name);
    lua_pushinteger(L, kind);
    lua_pushcclosure(L, charged_table_function, 2);
}

/* ---------------------------------------------------------------- header text */

/* RFC 5322 atext. */
static int is_atext(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '/':
    case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}': case '~':
        return 1;
    default:
        return 0;
    }
}

/* RFC 5322 dot-atom-text: 1*atext *("." 1*atext); with `hostname`, letters, digits and
 * hyphens only (a domain-name's labels). */
static int is_dot_atom_text(const char *text, size_t length, int hostname) {
    if (length == 0 || text[0] == '.' || text[length - 1] == '.') return 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '.') {
            if (text[i + 1] == '.') return 0;
        } else if (hostname ? !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
                            : !is_atext(c)) {
            return 0;
        }
    }
    return 1;
}

/* RFC 2045 token: printable ASCII but SPACE and tspecials. */
static int is_mime_token(const char *text, size_t length) {
    if (length == 0) return 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= 0x20 || c >= 0x7F || strchr("()<>@,;:\\\"/[]?=", c) != NULL) return 0;
    }
    return 1;
}

/* How a header value may hold a text unquoted: Received-SPF's key-value pairs take a dot-atom
 * (RFC 7208 §9.1, so an address's '@' and an IPv6 address's ':' are quoted), Authentication-
 * Results' values a MIME token or an address, local-part@domain-name (RFC 8601 §2.2). */
enum token_rule { TOKEN_DOT_ATOM, TOKEN_PVALUE };

/* True when `text` may stand in a header value as is under `rule`. */
static int is_plain_token(const char *text, size_t length, enum token_rule rule) {
    if (rule == TOKEN_DOT_ATOM) return is_dot_atom_text(text, length, 0);
    if (is_mime_token(text, length)) return 1;
    const char *at = memchr(text, '@', length);
    if (at == NULL) return 0;
    size_t local = (size_t)(at - text);
    if (memchr(at + 1, '@', length - local - 1) != NULL) return 0;
    return (local == 0 || is_dot_atom_text(text, local, 0)) && is_dot_atom_text(at + 1, length - local - 1, 1);
}

/* Adds `text` as a quoted-string, its quotes and backslashes escaped. */
static void add_quoted(luaL_Buffer *buffer, const char *text, size_t length) {
    luaL_addchar(buffer, '"');
    for (size_t i = 0; i < length; i++) {
        if (text[i] == '"' || text[i] == '\\') luaL_addchar(buffer, '\\');
        luaL_addchar(buffer, text[i]);
    }
    luaL_addchar(buffer, '"');
}

/* The length of `text` as a header token under `rule`: as is when plain, else quoted (add_quoted). */
static size_t header_token_length(const char *text, size_t length, enum token_rule rule) {
    if (is_plain_token(text, length, rule)) return length;
    size_t quoted = length + 2;
    for (size_t i = 0; i < length; i++) {
        if (text[i] == '"' || text[i] == '\\') quoted++;
    }
    return quoted;
}

/* Pushes header_token(value at index): tostring(value) as is when `rule` lets it stand
 * unquoted, else a quoted-string with quotes and backslashes escaped. Charged by length, like
 * the string functions. */
static void push_header_token(lua_State *L, int index, enum token_rule rule) {
    size_t length = 0;
    const char *text = luaL_tolstring(L, index, &length);
    vrules_charge(L, (int64_t)(length / 16) + 1);
    if (is_plain_token(text, length, rule)) return;
    luaL_Buffer buffer;
    luaL_buffinit(L, &buffer);
    add_quoted(&buffer, text, length);
    luaL_pushresult(&buffer);
    lua_remove(L, -2);
}

/* Replaces the string at the top with itself without '(', ')' and '\\' (a header comment). */
static void strip_comment_text(lua_State *L) {
    size_t length = 0;
    const char *text = lua_tolstring(L, -1, &length);
    vrules_charge(L, (int64_t)(length / 16) + 1);
    int clean = 1;
    for (size_t i = 0; clean && i < length; i++) clean = text[i] != '(' && text[i] != ')' && text[i] != '\\';
    if (clean) return;
    luaL_Buffer buffer;
    luaL_buffinit(L, &buffer);
    for (size_t i = 0; i < length; i++) {
        if (text[i] != '(' && text[i] != ')' && text[i] != '\\') luaL_addchar(&buffer, text[i]);
    }
    luaL_pushresult(&buffer);
    lua_remove(L, -2);
}

/* header_token(value): see push_header_token. */
static int sandbox_header_token(lua_State *L) {
    luaL_checkany(L, 1);
    push_header_token(L, 1, TOKEN_PVALUE);
    return 1;
}

/* comment_text(text): the text without '(', ')' and '\\', for a header comment. */
static int sandbox_comment_text(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    strip_comment_text(L);
    return 1;
}

/* Pushes t[key] (through metamethods, as a rule's own `t.key` would) and returns whether it
 * is neither nil nor false. */
static int push_field(lua_State *L, int table, const char *key) {
    lua_getfield(L, table, key);
    return lua_toboolean(L, -1);
}

/* Replaces the value at the top with tostring(value). A string is its own text (the sandbox's
 * strings have no __tostring), so only other values go through luaL_tolstring. */
static void push_text_in_place(lua_State *L) {
    if (lua_type(L, -1) == LUA_TSTRING) return;
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
}

/* Pushes tostring(t[key]) when t[key] is neither nil nor false, else `fallback` (nothing when
 * that is NULL); returns the index of what it pushed, 0 for nothing. */
static int push_part_text(lua_State *L, int table, const char *key, const char *fallback) {
    if (push_field(L, table, key)) {
        push_text_in_place(L);
        return lua_gettop(L);
    }
    lua_pop(L, 1);
    if (fallback == NULL) return 0;
    lua_pushstring(L, fallback);
    return lua_gettop(L);
}

/* Adds the string at `index` as a Received-SPF key-value pair's value: as is when it is a
 * dot-atom, else quoted; charged as push_header_token charges it. */
static void add_header_token(lua_State *L, luaL_Buffer *buffer, int index) {
    size_t length = 0;
    const char *text = lua_tolstring(L, index, &length);
    vrules_charge(L, (int64_t)(length / 16) + 1);
    if (is_plain_token(text, length, TOKEN_DOT_ATOM)) {
        luaL_addlstring(buffer, text, length);
    } else {
        add_quoted(buffer, text, length);
    }
}

/* Adds `name` and the header token of the string at `index`; nothing when `index` is 0 (the
 * part is absent). */
static void add_token_part(lua_State *L, luaL_Buffer *buffer, const char *name, int index) {
    if (index == 0) return;
    luaL_addstring(buffer, name);
    add_header_token(L, buffer, index);
}

/* Adds `length` octets of comment text without '(', ')' and '\\'; at most 253 of them (a
 * domain's length: a longer text is cut, it is a comment for people). */
static void add_comment_text(luaL_Buffer *buffer, const char *text, size_t length) {
    if (length > 253) length = 253;
    for (size_t i = 0; i < length; i++) {
        if (text[i] != '(' && text[i] != ')' && text[i] != '\\') luaL_addchar(buffer, text[i]);
    }
}

/* The room a header's value has on its line: RFC 5322 §2.1.1's 998 characters less "Name: "
 * (what ctx.add_header accepts). */
static size_t header_value_room(const char *name) { return 998 - strlen(name) - 2; }

/* add_token_part, when the part fits in `room` after what `buffer` holds; else nothing (a
 * sender's address or HELO name, or a record's mechanism, can be too long for the line). */
static void add_token_part_within(lua_State *L, luaL_Buffer *buffer, const char *name, int index, size_t room) {
    if (index == 0) return;
    size_t length = 0;
    const char *text = lua_tolstring(L, index, &length);
    if (luaL_bufflen(buffer) + strlen(name) + header_token_length(text, length, TOKEN_DOT_ATOM) > room) return;
    add_token_part(L, buffer, name, index);
}

/* Whether `result` is one of RFC 7208's seven results. */
static int is_spf_result(const char *result) {
    static const char *const results[] = { "pass", "fail", "softfail", "neutral", "none", "permerror", "temperror" };
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        if (strcmp(result, results[i]) == 0) return 1;
    }
    return 0;
}

/* spf.received_header(result): the RFC 7208 §9.1 Received-SPF value of an spf.check result.
 * The texts of its parts are pushed first, then written into one buffer: the value is made
 * as one string, with no string per piece (it is made for every message). A table that is
 * not such a result (a result word RFC 7208 does not have, no domain or client address) is
 * refused: the header would say "nil" on the message. */
static int sandbox_spf_received_header(lua_State *L) {
    lua_settop(L, 1);
    if (lua_type(L, 1) != LUA_TTABLE || lua_getfield(L, 1, "result") != LUA_TSTRING || !is_spf_result(lua_tostring(L, 2))
        || lua_getfield(L, 1, "domain") != LUA_TSTRING || lua_getfield(L, 1, "client_ip") != LUA_TSTRING) {
        return luaL_error(L, "spf.received_header(result): expected the result of spf.check or spf.check_host");
    }
    lua_settop(L, 2);
    luaL_checkstack(L, 40, "spf.received_header");
    const char *result = lua_tostring(L, 2);
    int failed = strcmp(result, "permerror") == 0 || strcmp(result, "temperror") == 0;
    int passed = strcmp(result, "pass") == 0;
    int receiver = push_part_text(L, 1, "receiver", NULL);
    lua_getfield(L, 1, "domain");
    push_text_in_place(L);
    int domain = lua_gettop(L);
    lua_getfield(L, 1, "client_ip");
    push_text_in_place(L);
    int client = lua_gettop(L);
    int envelope = push_part_text(L, 1, "envelope_from", "");
    int helo = push_part_text(L, 1, "helo", NULL);
    int identity = push_part_text(L, 1, "identity", "mailfrom");
    int mechanism = push_part_text(L, 1, "mechanism", NULL);
    int reason = failed ? push_part_text(L, 1, "reason", NULL) : 0;

    size_t length = 0;
    const char *text;
    luaL_Buffer buffer;
    luaL_buffinit(L, &buffer);
    text = lua_tolstring(L, 2, &length);
    luaL_addlstring(&buffer, text, length);
    luaL_addstring(&buffer, " (");
    /* "<receiver>: domain of <domain> designates|does not designate <ip> as permitted sender",
     * without '(', ')' and '\\', charged as one comment. */
    const char *designates = passed ? " designates " : " does not designate ";
    size_t commentLength = strlen(": domain of ") + strlen(designates) + strlen(" as permitted sender");
    if (receiver) {
        text = lua_tolstring(L, receiver, &length);
        add_comment_text(&buffer, text, length);
        commentLength += length;
    } else {
        luaL_addstring(&buffer, "vrules");
        commentLength += strlen("vrules");
    }
    luaL_addstring(&buffer, ": domain of ");
    text = lua_tolstring(L, domain, &length);
    add_comment_text(&buffer, text, length);
    commentLength += length;
    luaL_addstring(&buffer, designates);
    text = lua_tolstring(L, client, &length);
    add_comment_text(&buffer, text, length);
    commentLength += length;
    luaL_addstring(&buffer, " as permitted sender");
    vrules_charge(L, (int64_t)(commentLength / 16) + 1);
    add_token_part(L, &buffer, ") client-ip=", client);
    /* The key-value pairs that fit on the header's line, in RFC 7208's order (they are all
     * optional): a client's overlong address or HELO name leaves out only itself. */
    size_t room = header_value_room("Received-SPF");
    add_token_part_within(L, &buffer, "; envelope-from=", envelope, room);
    add_token_part_within(L, &buffer, "; helo=", helo, room);
    add_token_part_within(L, &buffer, "; receiver=", receiver, room);
    add_token_part_within(L, &buffer, "; identity=", identity, room);
    add_token_part_within(L, &buffer, "; mechanism=", mechanism, room);
    add_token_part_within(L, &buffer, "; problem=", reason, room);
    luaL_pushresult(&buffer);
    return 1;
}

/* Pushes `type(v) == "table" and v.field or v` for the value at `value`. */
static void push_status(lua_State *L, int value, const char *field) {
    if (lua_type(L, value) == LUA_TTABLE) {
        if (push_field(L, value, field)) return;
        lua_pop(L, 1);
    }
    lua_pushvalue(L, value);
}

/* Raises unless the string at the top is one of `allowed` (NULL-terminated): a result of
 * another kind, a table without its status, or a word of the script's own would otherwise
 * be written into the header as is ("spf=table: 0x5581...", "iprev=ok"). */
static void check_result(lua_State *L, int given, const char *method, const char *field,
                         const char *const allowed[]) {
    const char *text = lua_tostring(L, -1);
    for (int index = 0; allowed[index] != NULL; index++) {
        if (text != NULL && strcmp(text, allowed[index]) == 0) return;
    }
    if (lua_type(L, given) == LUA_TTABLE) {
        lua_getfield(L, given, field);
        if (lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "authres: %s must be a result of its check or one of its status strings, got a table without '%s'",
                       method, field);
        }
        lua_pop(L, 1);
    }
    luaL_error(L, "authres: %s must be a result of its check or one of its status strings, got '%s'", method,
               text == NULL ? "?" : text);
}

static const char *const iprev_results[] = {"pass", "fail", "temperror", "permerror", NULL};
static const char *const spf_results[] = {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", NULL};

/* authres(ctx, results): an RFC 8601 Authentication-Results value for this server (the
 * authserv-id is ctx.server.name) from iprev and SPF results, tables or status strings. */
static int sandbox_authres(lua_State *L) {
    lua_settop(L, 2);
    if (lua_type(L, 1) != LUA_TTABLE || lua_type(L, 2) != LUA_TTABLE) {
        return luaL_error(L, "authres(ctx, { iprev = ..., spf = ... }): expected the context and a table of results");
    }
    luaL_checkstack(L, 40, "authres");
    int first = lua_gettop(L) + 1;
    /* (ctx.server and ctx.server.name) or "localhost" */
    if (push_field(L, 1, "server")) {
        int server = lua_gettop(L);
        lua_getfield(L, server, "name");
        lua_remove(L, server);
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "localhost");
    }
    push_header_token(L, -1, TOKEN_PVALUE);
    lua_remove(L, -2);
    int methods = 0;
    lua_getfield(L, 2, "iprev");
    int iprev = lua_gettop(L);
    if (!lua_isnil(L, iprev)) {
        lua_pushliteral(L, "; iprev=");
        push_status(L, iprev, "status");
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
        check_result(L, iprev, "iprev", "status", iprev_results);
        lua_pushliteral(L, " policy.iprev=");
        lua_getfield(L, 1, "client");
        lua_getfield(L, -1, "ip");
        lua_remove(L, -2);
        push_header_token(L, -1, TOKEN_PVALUE);
        lua_remove(L, -2);
        if (lua_type(L, iprev) == LUA_TTABLE) {
            if (push_field(L, iprev, "name")) {
                int name = lua_gettop(L);
                lua_pushliteral(L, " (");
                luaL_tolstring(L, name, NULL);
                strip_comment_text(L);
                lua_pushliteral(L, ")");
                lua_remove(L, name);
            } else {
                lua_pop(L, 1);
            }
        }
        methods++;
    }
    lua_remove(L, iprev);
    lua_getfield(L, 2, "spf");
    int spf = lua_gettop(L);
    if (!lua_isnil(L, spf)) {
        /* The identity: the result's own, else helo for the null reverse-path, else mailfrom. */
        int helo_identity;
        if (lua_type(L, spf) == LUA_TTABLE && push_field(L, spf, "identity")) {
            helo_identity = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "helo") == 0;
            lua_pop(L, 1);
        } else {
            if (lua_type(L, spf) == LUA_TTABLE) lua_pop(L, 1);
            lua_getfield(L, 1, "mail_from");
            if (lua_isnil(L, -1)) {
                helo_identity = 1;
            } else {
                lua_getfield(L, -1, "address");
                helo_identity = lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) == 0;
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        lua_pushliteral(L, "; spf=");
        push_status(L, spf, "result");
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
        check_result(L, spf, "spf", "result", spf_results);
        if (helo_identity) {
            lua_pushliteral(L, " smtp.helo=");
            if (!push_field(L, 1, "helo")) {
                lua_pop(L, 1);
                lua_pushliteral(L, "");
            }
        } else {
            lua_pushliteral(L, " smtp.mailfrom=");
            lua_getfield(L, 1, "mail_from");
            lua_getfield(L, -1, "address");
            lua_remove(L, -2);
        }
        push_header_token(L, -1, TOKEN_PVALUE);
        lua_remove(L, -2);
        /* The property is left out when it does not fit on the header's line: a client's
         * overlong address or HELO name. */
        size_t total = 0;
        for (int piece = first; piece < lua_gettop(L); piece++) {
            if (lua_type(L, piece) == LUA_TSTRING) total += lua_rawlen(L, piece);
        }
        if (total + lua_rawlen(L, -1) > header_value_room("Authentication-Results")) lua_pop(L, 2);
        methods++;
    }
    lua_remove(L, spf);
    if (methods == 0) lua_pushliteral(L, "; none");
    lua_concat(L, lua_gettop(L) - first + 1);
    return 1;
}

static int push_sandbox_library(lua_State *L) {
    lua_createtable(L, 0, 9);
    int result = lua_gettop(L);

    vrules_push_string_functions(L);
    lua_setfield(L, result, "string");

    luaL_requiref(L, "table", luaopen_table, 0);
    int library = lua_gettop(L);
    lua_createtable(L, 0, 6);
    static const struct { const char *name; int kind; } charged[] = {
        {"insert", T_INSERT}, {"remove", T_REMOVE}, {"move", T_MOVE},
        {"sort", T_SORT}, {"concat", T_CONCAT}, {"unpack", T_UNPACK},
    };
    for (size_t i = 0; i < sizeof(charged) / sizeof(charged[0]); i++) {
        push_charged(L, library, charged[i].name, charged[i].kind);
        lua_setfield(L, -2, charged[i].name);
    }
    lua_setfield(L, result, "table");
    lua_pop(L, 1);

    static const luaL_Reg functions[] = {
        {"readonly", sandbox_readonly},
        {"is_readonly", sandbox_is_readonly},
        {"charge", sandbox_charge},
        {"running", sandbox_running},
        {"defined", sandbox_defined},
        {"header_token", sandbox_header_token},
        {"comment_text", sandbox_comment_text},
        {"spf_received_header", sandbox_spf_received_header},
        {"authres", sandbox_authres},
        {NULL, NULL},
    };
    luaL_setfuncs(L, functions, 0);
    return 1;
}

int vrules_push_sandbox_library(lua_State *L) {
    lua_pushcfunction(L, push_sandbox_library);
    return lua_pcall(L, 0, 1, 0);
}
