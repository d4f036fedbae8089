/// RRSIG times: seconds since 1970 modulo 2^32, compared in serial number arithmetic
/// (RFC 4034 §3.1.5, RFC 1982), and printed as UTC for reasons.
package enum DNSSECTime {
    /// The current time as an RRSIG timestamp (the low 32 bits of the Unix time).
    package static func timestamp(unixSeconds: Int64) -> UInt32 { UInt32(truncatingIfNeeded: unixSeconds) }

    /// RFC 1982: `a` is before `b` when `b - a` (mod 2^32) is in (0, 2^31).
    package static func isBefore(_ a: UInt32, _ b: UInt32) -> Bool {
        let difference = b &- a
        return difference != 0 && difference < 0x8000_0000
    }

    /// The timestamp closest to `now` in serial arithmetic, as Unix seconds.
    package static func unixSeconds(_ timestamp: UInt32, near now: Int64) -> Int64 {
        let delta = Int64(Int32(bitPattern: timestamp &- UInt32(truncatingIfNeeded: now)))
        return now + delta
    }

    /// `2026-11-20T00:00:00Z`.
    package static func format(unixSeconds seconds: Int64) -> String {
        let days = Int64((Double(seconds) / 86400).rounded(.down))
        let secondOfDay = seconds - days * 86400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))Z"
    }

    /// Parses the presentation form `YYYYMMDDHHmmSS` (RFC 4034 §3.2) into Unix seconds.
    package static func parse(_ text: String) -> Int64? {
        let digits = Array(text.utf8)
        guard digits.count == 14, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        func number(_ range: Range<Int>) -> Int64 { digits[range].reduce(0) { $0 * 10 + Int64($1 - 48) } }
        let year = number(0..<4), month = number(4..<6), day = number(6..<8)
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86400 + number(8..<10) * 3600 + number(10..<12) * 60 + number(12..<14)
    }
}
