/// The one size grammar of vrules (`limits.memory`): a whole number of bytes, or a whole
/// number followed by `K`/`KiB`, `M`/`MiB` or `G`/`GiB` (powers of 1024): `"64MiB"`.
/// In TOML a bare integer means bytes.
public enum ByteSizeText {
    static let scales: [String: Int] = ["": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30, "GiB": 1 << 30]

    /// The size in bytes, or nil when `text` is not in the grammar or overflows.
    public static func parse(_ text: String) -> Int? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 18, let number = Int(digits),
              let scale = Self.scales[String(text.dropFirst(digits.count))] else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : product
    }
}
