#ifndef VRULES_INTERNAL_H
#define VRULES_INTERNAL_H

#include "CLuaShim.h"

/// Bytes allocated or copied by library code that count as one instruction of the budget.
#define VRULES_BYTES_PER_UNIT 16

/// Once a limit has passed, the largest block a script may still get (error messages).
#define VRULES_UNWIND_ALLOWANCE 1024

/// Charges `units` of work done inside a library call to the running evaluation's budget.
/// Raises (from C, inside the library call) once the budget, the deadline or the run time
/// is spent; does nothing outside an evaluation.
void vrules_charge(lua_State *L, int64_t units);

/// The count hook, shared so that a charge can arm it on every instruction.
void vrules_hook(lua_State *L, lua_Debug *ar);

void vrules_push_string_functions(lua_State *L);

#endif
