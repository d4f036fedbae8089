/// A key path as configuration errors print it: `server.virtual."example.com".dns.servers[0]`.
struct ConfigurationKeyPath: CustomStringConvertible {
    private(set) var description: String

    static let root = ConfigurationKeyPath(description: "")

    func child(_ key: String) -> ConfigurationKeyPath {
        let bare = !key.isEmpty && key.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        let component = bare ? key : "\"\(key)\""
        return ConfigurationKeyPath(description: self.description.isEmpty ? component : "\(self.description).\(component)")
    }

    func element(_ index: Int) -> ConfigurationKeyPath {
        ConfigurationKeyPath(description: "\(self.description)[\(index)]")
    }
}
