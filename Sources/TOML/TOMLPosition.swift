/// A place in a TOML document: 1-based line and column. Columns count Unicode scalars,
/// as editors do, so `path:line:col` from a diagnostic lands on the right character.
public struct TOMLPosition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public static func < (lhs: TOMLPosition, rhs: TOMLPosition) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }

    public var description: String { "\(self.line):\(self.column)" }
}
