#if canImport(Glibc)
import Glibc
#endif

/// The group a UNIX socket is given (`[policy] socket_group`), by name or number. One lookup
/// for `vrules serve`, which refuses to start without it, and `vrules check`, which warns
/// of a name this machine does not know.
public enum SocketGroup {
    /// The group's ID, from its name or number; nil when this machine has no such group.
    public static func id(named name: String) -> gid_t? {
        if let number = gid_t(name) { return number }
        guard let entry = getgrnam(name) else { return nil }
        return entry.pointee.gr_gid
    }
}
