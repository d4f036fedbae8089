/// The tables of a document while it is parsed, with how each was made, because TOML's
/// rules about redefining a table depend on it: a `[header]` may name a table another
/// header only implied, never one already defined; dotted keys may only extend tables
/// made by dotted keys in the same section; inline tables and static arrays are sealed.
final class TOMLTableBuilder {
    enum Origin {
        /// Made by a `[header]` or `[[header]]`, or the document itself.
        case defined
        /// Made on the way to a header's last key (`a` and `b` in `[a.b.c]`).
        case implied
        /// Made by a dotted key (`a` in `a.b = 1`).
        case dotted
    }

    enum Child {
        case value(TOMLValue)
        case table(TOMLTableBuilder)
        /// An array of tables made by `[[header]]`: it grows with each header.
        case tableArray([TOMLTableBuilder], position: TOMLPosition)
    }

    var origin: Origin
    let position: TOMLPosition
    /// Tables below the document; bounds recursion for any input.
    let depth: Int
    private(set) var order: [String] = []
    private(set) var children: [String: (keyPosition: TOMLPosition, child: Child)] = [:]

    init(origin: Origin, position: TOMLPosition, depth: Int) {
        self.origin = origin
        self.position = position
        self.depth = depth
    }

    subscript(key: String) -> Child? {
        self.children[key]?.child
    }

    func set(_ key: String, _ child: Child, keyPosition: TOMLPosition) {
        if self.children.updateValue((keyPosition, child), forKey: key) == nil { self.order.append(key) }
    }

    func appendToTableArray(_ key: String, _ table: TOMLTableBuilder) {
        guard let index = self.children.index(forKey: key),
              case .tableArray(var tables, let position) = self.children.values[index].child else { return }
        // The dictionary lets go of the array first: appended while it still held it, the
        // array was copied each time, and a file of 40,000 `[[x]]` headers took 23 s to read.
        self.children.values[index].child = .tableArray([], position: position)
        tables.append(table)
        self.children.values[index].child = .tableArray(tables, position: position)
    }

    /// The finished table.
    func build() -> TOMLTable {
        var table = TOMLTable()
        for key in self.order {
            guard let (keyPosition, child) = self.children[key] else { continue }
            let value: TOMLValue
            switch child {
            case .value(let plain):
                value = plain
            case .table(let builder):
                value = TOMLValue(.table(builder.build()), at: builder.position)
            case .tableArray(let builders, let position):
                value = TOMLValue(.array(builders.map { TOMLValue(.table($0.build()), at: $0.position) }), at: position)
            }
            table.append(key, TOMLTable.Entry(keyPosition: keyPosition, value: value))
        }
        return table
    }
}
