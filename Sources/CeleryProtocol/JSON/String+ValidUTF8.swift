extension String {
    /// `bytes` as a String when they are valid UTF-8, `nil` when they are not: the same answer as
    /// `String(validating:as: UTF8.self)`. All-ASCII input (task ids, names, header keys: almost
    /// every string on the hot path) is copied without the generic validator, which looks up
    /// type metadata at run time on every call.
    @inlinable
    public init?(validUTF8 bytes: UnsafeBufferPointer<UInt8>) {
        var high: UInt8 = 0
        for byte in bytes { high |= byte }
        if high < 0x80 {
            self.init(decoding: bytes, as: UTF8.self)
        } else {
            guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
            self = s
        }
    }

    /// `init?(validUTF8:)` over an array.
    @inlinable
    public init?(validUTF8 bytes: [UInt8]) {
        guard let s = bytes.withUnsafeBufferPointer({ String(validUTF8: $0) }) else { return nil }
        self = s
    }
}
