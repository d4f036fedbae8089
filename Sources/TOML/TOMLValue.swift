/// A TOML value with the position where it starts, so a configuration reader can say
/// `path:line:col` for a value it refuses.
public struct TOMLValue: Hashable, Sendable {
    public indirect enum Kind: Hashable, Sendable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case dateTime(TOMLDateTime)
        case array([TOMLValue])
        case table(TOMLTable)
    }

    public var kind: Kind
    public var position: TOMLPosition

    public init(_ kind: Kind, at position: TOMLPosition) {
        self.kind = kind
        self.position = position
    }

    public var string: String? {
        if case .string(let value) = self.kind { return value }
        return nil
    }

    public var integer: Int64? {
        if case .integer(let value) = self.kind { return value }
        return nil
    }

    public var float: Double? {
        if case .float(let value) = self.kind { return value }
        return nil
    }

    public var boolean: Bool? {
        if case .boolean(let value) = self.kind { return value }
        return nil
    }

    public var array: [TOMLValue]? {
        if case .array(let value) = self.kind { return value }
        return nil
    }

    public var table: TOMLTable? {
        if case .table(let value) = self.kind { return value }
        return nil
    }

    /// "a string", "an integer"...: how error messages name what was found.
    public var typeName: String {
        switch self.kind {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a floating-point number"
        case .boolean: return "a boolean"
        case .dateTime: return "a date or time"
        case .array: return "an array"
        case .table: return "a table"
        }
    }
}

/// A TOML table: keys in the order they were first defined, each with its value and the
/// position of the key itself (where an "unknown key" diagnostic points).
public struct TOMLTable: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var keyPosition: TOMLPosition
        public var value: TOMLValue
    }

    public private(set) var keys: [String] = []
    private var entries: [String: Entry] = [:]

    public init() {}

    public subscript(key: String) -> TOMLValue? {
        self.entries[key]?.value
    }

    public func entry(_ key: String) -> Entry? {
        self.entries[key]
    }

    public var isEmpty: Bool { self.keys.isEmpty }

    /// Adds a key; the parser has already refused duplicates.
    mutating func append(_ key: String, _ entry: Entry) {
        if self.entries.updateValue(entry, forKey: key) == nil { self.keys.append(key) }
    }
}
