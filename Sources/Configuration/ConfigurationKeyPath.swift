import TOML

/// A key path as configuration errors print it: `server.virtual."example.com".dns.servers[0]`.
struct ConfigurationKeyPath: CustomStringConvertible {
    private(set) var description: String

    static let root = ConfigurationKeyPath(description: "")

    func child(_ key: String) -> ConfigurationKeyPath {
        let component = TOMLText.key(key)
        return ConfigurationKeyPath(description: self.description.isEmpty ? component : "\(self.description).\(component)")
    }

    func element(_ index: Int) -> ConfigurationKeyPath {
        ConfigurationKeyPath(description: "\(self.description)[\(index)]")
    }
}
