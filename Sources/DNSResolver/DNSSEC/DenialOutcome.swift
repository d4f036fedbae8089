import DNS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a denial-of-existence proof (NSEC or NSEC3) established.
package enum DenialOutcome: Equatable, Sendable {
    /// The proof holds; the text names the records used, for traces.
    case proven(String)
    /// The name lies in an opt-out span, or the NSEC3 parameters exceed RFC 9276's limit:
    /// nothing can be proven either way, so the answer is insecure.
    case insecure(String)
    /// The proof is missing or contradicts the answer.
    case bogus(String)
}

/// What a denial says about a name as a zone cut, when a DS lookup found no DS.
package enum DSAbsence: Equatable, Sendable {
    /// The name is not a delegation (no NS there, or it does not exist): it lies inside the
    /// parent's zone and shares its keys.
    case notAZoneCut(String)
    /// A delegation without DS (or in an opt-out span): everything below is insecure.
    case unsignedDelegation(String)
    case insecure(String)
    case bogus(String)
}

/// Name helpers shared by the NSEC and NSEC3 proofs.
package enum DenialNames {
    /// `name`, its parent, ... up to and including `zone`.
    package static func selfAndAncestors(_ name: String, downTo zone: String) -> [String] {
        var names: [String] = []
        var current = name
        while true {
            names.append(current)
            if current == zone || current.isEmpty { break }
            current = DNSName.parentZone(of: current)
        }
        return names
    }

    /// True when `name` is `zone` or ends in `.` and `zone`: compared as octets, with no
    /// string built (every RRset and signer is checked with it).
    package static func isAtOrBelow(_ name: String, _ zone: String) -> Bool {
        if zone.isEmpty || name == zone { return true }
        var name = name
        var zone = zone
        return name.withUTF8 { nameBytes in
            zone.withUTF8 { zoneBytes in
                let start = nameBytes.count - zoneBytes.count
                guard start > 0, nameBytes[start - 1] == UInt8(ascii: ".") else { return false }
                return memcmp(nameBytes.baseAddress! + start, zoneBytes.baseAddress!, zoneBytes.count) == 0
            }
        }
    }

    /// The ancestor of `name` one label below `encloser` (the "next closer name").
    package static func nextCloser(_ name: String, encloser: String) -> String? {
        var current = name
        while !current.isEmpty {
            let parent = DNSName.parentZone(of: current)
            if parent == encloser { return current }
            current = parent
        }
        return nil
    }

    package static func wildcard(at encloser: String) -> String {
        encloser.isEmpty ? "*" : "*." + encloser
    }
}
