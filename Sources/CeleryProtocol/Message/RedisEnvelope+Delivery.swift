extension RedisEnvelope {
    /// What the Redis broker reads from a popped message: its ack handle, where a restore would
    /// put it back, and the task inside (or why there is none).
    public struct Decoded: Sendable {
        /// `properties.delivery_tag`; `nil` when the envelope has none (or is unreadable).
        public let deliveryTag: String?
        /// `properties.delivery_info.exchange` and `.routing_key`; `""` when absent.
        public let exchange: String
        public let routingKey: String
        public let message: Result<TaskMessage, MessageDecodingError>
    }

    /// Decodes a popped message exactly as `decodeTask` does (same task, same refusal), without
    /// building the envelope's own JSON tree: the top level is read in place, its `body` is taken
    /// as bytes, and only `headers` and `properties` become JSON values. This runs once per
    /// message; `decodeTask` stays the reference, and any envelope this reader does not take in
    /// one pass (an escaped member name, a body that is not a plain ASCII string, an error)
    /// is decoded by it instead.
    public static func decodeDelivery(_ bytes: [UInt8]) -> Decoded {
        if let members = bytes.withUnsafeBufferPointer({ Members.read($0) }) {
            let properties = members.properties
            let message: Result<TaskMessage, MessageDecodingError>
            do {
                message = .success(try taskMessage(
                    headers: members.headers, contentType: members.contentType, contentEncoding: members.contentEncoding,
                    properties: properties, body: members.body.map { bytes[$0] }))
            } catch {
                message = .failure(error)
            }
            let info = properties?["delivery_info"]
            return Decoded(
                deliveryTag: properties?["delivery_tag"]?.stringValue,
                exchange: info?["exchange"]?.stringValue ?? "",
                routingKey: info?["routing_key"]?.stringValue ?? "",
                message: message)
        }
        let (envelope, message) = decodeTask(bytes)
        return Decoded(
            deliveryTag: envelope?.deliveryTag, exchange: envelope?.exchange ?? "", routingKey: envelope?.routingKey ?? "", message: message)
    }

    /// The members of an envelope's top-level object that decoding reads.
    private struct Members {
        /// The byte range of the body's text, between its quotes.
        var body: Range<Int>?
        var headers: JSON?
        var properties: JSON?
        var contentType: JSON?
        var contentEncoding: JSON?

        private enum Key {
            case body, headers, properties, contentType, contentEncoding
        }

        /// The members of a well-formed envelope in the usual shape, or `nil` for anything else
        /// (invalid JSON included): the caller then takes the reference path.
        static func read(_ buffer: UnsafeBufferPointer<UInt8>) -> Members? {
            var cursor = JSONParser.Cursor(bytes: buffer, maxDepth: JSONParser.defaultMaxDepth)
            var members = Members()
            cursor.skipSpace()
            guard cursor.next() == UInt8(ascii: "{") else { return nil }
            while true {
                cursor.skipSpace()
                guard let keyRange = cursor.plainASCIIString() else { return nil }
                cursor.skipSpace()
                guard cursor.next() == UInt8(ascii: ":") else { return nil }
                cursor.skipSpace()
                // A repeated member overwrites the one before: the last wins, as in `JSONParser`.
                let key = Self.key(UnsafeBufferPointer(rebasing: buffer[keyRange]))
                if key == .body {
                    guard let range = cursor.plainASCIIString() else { return nil }
                    members.body = range
                } else {
                    guard let value = try? cursor.parseValue(depth: 1) else { return nil }
                    switch key {
                    case .headers?: members.headers = value
                    case .properties?: members.properties = value
                    case .contentType?: members.contentType = value
                    case .contentEncoding?: members.contentEncoding = value
                    case .body?, nil: break
                    }
                }
                cursor.skipSpace()
                switch cursor.next() {
                case UInt8(ascii: ","): continue
                case UInt8(ascii: "}"):
                    cursor.skipSpace()
                    return cursor.index == buffer.count ? members : nil
                default: return nil
                }
            }
        }

        private static func key(_ bytes: UnsafeBufferPointer<UInt8>) -> Key? {
            switch bytes.count {
            case 4 where same(bytes, "body"): return .body
            case 7 where same(bytes, "headers"): return .headers
            case 10 where same(bytes, "properties"): return .properties
            case 12 where same(bytes, "content-type"): return .contentType
            case 16 where same(bytes, "content-encoding"): return .contentEncoding
            default: return nil
            }
        }

        /// Whether `bytes` are those of `name`, which has as many (a plain loop: the generic
        /// `elementsEqual` over a string's UTF-8 view costs ten times as much).
        private static func same(_ bytes: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
            let p = name.utf8Start
            for i in 0..<bytes.count where bytes[i] != p[i] { return false }
            return true
        }
    }
}
