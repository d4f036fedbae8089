/// A packet that cannot be decoded or a message that cannot be encoded.
///
/// Kept deliberately small (a code and a human reason) in the style of swift-asn1: the
/// transport only needs to know that a datagram is unusable, while tests and logs want to
/// know exactly why.
package struct DNSWireError: Error, Hashable, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case truncatedPacket
            case compressionLoop
            case pointerOutOfBounds
            case labelTooLong
            case nameTooLong
            case invalidLabelType
            case invalidRecordData
            case invalidName
            case trailingData
            case invalidOPT
            case messageTooLarge
        }

        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// A read went past the end of the packet or of a record's data (a count larger than the packet).
        package static let truncatedPacket = Code(.truncatedPacket)
        /// A compression pointer that does not point strictly backwards, or too many hops.
        package static let compressionLoop = Code(.compressionLoop)
        /// A compression pointer past the end of the packet.
        package static let pointerOutOfBounds = Code(.pointerOutOfBounds)
        /// A label longer than 63 octets.
        package static let labelTooLong = Code(.labelTooLong)
        /// A name longer than 255 octets in wire form.
        package static let nameTooLong = Code(.nameTooLong)
        /// The reserved label types 0b01 and 0b10.
        package static let invalidLabelType = Code(.invalidLabelType)
        /// Record data whose length does not match what its type requires.
        package static let invalidRecordData = Code(.invalidRecordData)
        /// A presentation-form name that cannot be encoded.
        package static let invalidName = Code(.invalidName)
        /// Bytes left after the last record the header announced.
        package static let trailingData = Code(.trailingData)
        /// A malformed or duplicated EDNS0 OPT record.
        package static let invalidOPT = Code(.invalidOPT)
        /// An encoded message that would exceed 65535 octets.
        package static let messageTooLarge = Code(.messageTooLarge)

        package var description: String { self.backing.rawValue }
    }

    package var code: Code
    package var reason: String

    package init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    package var description: String { "\(self.code): \(self.reason)" }
}
