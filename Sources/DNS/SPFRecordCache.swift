/// Parsed SPF records by their text, shared by every check in the process: a mail server
/// sees the same few records over and over, and parsing was half the cost of a check.
///
/// Bounded two ways, since records come from anyone's DNS: texts longer than
/// `maximumTextLength` are not kept (they are parsed each time), and when `capacity`
/// entries are held the cache is emptied and starts again, which costs one parse per record
/// in use and needs no bookkeeping on the hot path.
final class SPFRecordCache: @unchecked Sendable {
    // `@unchecked`: `entries` is only touched with `lock` held.

    static let shared = SPFRecordCache(capacity: 4096)
    static let maximumTextLength = 2048

    private let capacity: Int
    private let lock = DNSLock()
    private var entries: [String: Result<SPFRecord, SPFSyntaxError>] = [:]

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// How many texts are held, for tests.
    var count: Int { self.lock.withLock { self.entries.count } }

    /// The record parsed from `text` (which starts with `v=spf1`), or its syntax error.
    /// Whether the cache keeps the record parsed from `text`.
    static func isKept(_ text: String) -> Bool { text.utf8.count <= Self.maximumTextLength }

    func record(for text: String) -> Result<SPFRecord, SPFSyntaxError> {
        let cacheable = Self.isKept(text)
        if cacheable, let hit = self.lock.withLock({ self.entries[text] }) {
            return hit
        }
        let parsed: Result<SPFRecord, SPFSyntaxError>
        do {
            parsed = .success(try SPFRecord.parse(text))
        } catch {
            parsed = .failure(error)
        }
        if cacheable {
            self.lock.withLock {
                if self.entries.count >= self.capacity { self.entries.removeAll(keepingCapacity: true) }
                self.entries[text] = parsed
            }
        }
        return parsed
    }
}
