/// The globals a rule test file (`*_test.lua`, read by `vrules test`) may use.
///
/// A test file is data: `RuleTestFileLoader` runs it with an empty environment and only
/// reads the table it returns, so not even Lua's base library is there. Globals the file
/// defines at its own top level are allowed (the empty environment takes them); anything
/// else read is a typo that would fail when the tests run. Add names here if the harness
/// ever gives test files helpers.
enum TestFileGlobals {
    static let names: [String] = []
}
