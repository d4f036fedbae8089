import Foundation
import VrulesTestSupport

/// `delv` (bind9-dnsutils), the independent validator the matrix compares vrules with.
enum Delv {
    static let path = "/usr/bin/delv"

    /// Asks `delv` through `upstreamPort`, trusting only the anchors in `anchorFile`, and
    /// reads the status from its output (it exits 0 whatever happened).
    static func status(of question: DNSSECCase, anchorFile: URL, upstreamPort: UInt16) throws -> (status: String, output: String) {
        let (_, output) = try ServerProcess.runToEnd(Self.path, ["-a", anchorFile.path, "+root=.", "@127.0.0.1", "-p",
                                                                  String(upstreamPort), question.name, question.type])
        return (self.status(fromOutput: output), output)
    }

    /// delv 9.18 prints one comment line per answer it validated: "; fully validated" or
    /// "; unsigned answer", prefixed by "negative response, " for NXDOMAIN and NODATA, which
    /// it also reports as ";; resolution failed: ncache nxdomain|nxrrset". Any other
    /// "resolution failed" is a validation failure ("broken trust chain", "insecurity proof
    /// failed", "no valid signature found", "failure"), except a timeout, which says nothing
    /// about the data. A CNAME chain prints a line per link: the weakest one counts.
    static func status(fromOutput output: String) -> String {
        var sawSecure = false
        var sawInsecure = false
        for line in output.split(separator: "\n") {
            if line.hasPrefix(";; resolution failed: ") {
                let reason = line.dropFirst(";; resolution failed: ".count)
                if reason.hasPrefix("ncache nxdomain") || reason.hasPrefix("ncache nxrrset") { continue }
                if reason.contains("timed out") { return "indeterminate" }
                return "bogus"
            }
            if line == "; fully validated" || line == "; negative response, fully validated" { sawSecure = true }
            if line == "; unsigned answer" || line == "; negative response, unsigned answer" { sawInsecure = true }
        }
        if sawInsecure { return "insecure" }
        if sawSecure { return "secure" }
        return "unreadable"
    }
}
