/// Why a document is not TOML 1.0, and where: the parser stops at the first mistake, so
/// the position is where reading could not go on.
public struct TOMLError: Error, Hashable, Sendable, CustomStringConvertible {
    public var position: TOMLPosition
    public var reason: String

    public init(position: TOMLPosition, reason: String) {
        self.position = position
        self.reason = reason
    }

    public var description: String { "\(self.position): \(self.reason)" }
}
