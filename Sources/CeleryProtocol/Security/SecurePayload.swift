/// The body of a message signed by Celery's `auth` serializer
/// (`celery.security.serialization.SecureSerializer`), content type `application/data`:
///
/// ```
/// base64( base64(signer) SEP base64(signature) SEP content_type SEP content_encoding SEP body )
/// ```
///
/// with `SEP` = `"\x00\x01"`. `signer` is the signing certificate's id (its issuer's attribute
/// values joined by spaces, a space, its serial number in decimal); `signature` signs `body`,
/// the inner serialized bytes (JSON from a default producer), exactly as they appear here.
/// The split is Celery's `split(SEP, maxsplit=4)`: the body may itself hold the separator.
///
/// Pure: no I/O, no cryptography. `decode` only takes the payload apart; whether the signature
/// is good is for a verifier (FnHostSecurity) to say. `decode` is total over any bytes: it
/// returns a payload or throws `SecurityError`, never traps (a fuzz target may call it).
public struct SecurePayload: Sendable, Equatable {
    /// The content type Celery registers the `auth` serializer under.
    public static let contentType = "application/data"
    /// The content encoding Celery registers the `auth` serializer under.
    public static let contentEncoding = "utf-8"
    /// Celery's `DEFAULT_SEPARATOR`.
    public static let separator: [UInt8] = [0x00, 0x01]

    /// The signer's certificate id, as the certificate store is keyed (`Certificate.get_id()`).
    public var signer: String
    /// The raw signature bytes (RSA-PSS over `body`).
    public var signature: [UInt8]
    /// The inner serializer's content type (`application/json`).
    public var innerContentType: String
    /// The inner serializer's content encoding (`utf-8`).
    public var innerContentEncoding: String
    /// The signed bytes: the inner serialized body.
    public var body: [UInt8]

    public init(signer: String, signature: [UInt8], innerContentType: String, innerContentEncoding: String, body: [UInt8]) {
        self.signer = signer
        self.signature = signature
        self.innerContentType = innerContentType
        self.innerContentEncoding = innerContentEncoding
        self.body = body
    }

    /// Takes an `application/data` body apart. Throws `SecurityError` (never traps) when it is
    /// not base64, has fewer than five fields, or a field is not what it must be.
    public static func decode(_ payload: some Collection<UInt8>) throws(SecurityError) -> SecurePayload {
        guard let raw = Base64.decode(payload) else {
            throw SecurityError("Unable to deserialize: the signed payload is not base64")
        }
        var fields: [ArraySlice<UInt8>] = []
        var start = raw.startIndex
        var i = raw.startIndex
        while fields.count < 4 && i + 1 < raw.endIndex {
            if raw[i] == separator[0] && raw[i + 1] == separator[1] {
                fields.append(raw[start..<i])
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        guard fields.count == 4 else {
            throw SecurityError("Unable to deserialize: the signed payload has \(fields.count + 1) fields, not 5 (signer, signature, content type, content encoding, body)")
        }
        guard let signerBytes = Base64.decode(fields[0]) else { throw SecurityError("Unable to deserialize: the signer is not base64") }
        guard let signature = Base64.decode(fields[1]) else { throw SecurityError("Unable to deserialize: the signature is not base64") }
        guard let signer = String(validating: signerBytes, as: UTF8.self) else { throw SecurityError("Unable to deserialize: the signer is not UTF-8") }
        guard let type = String(validating: fields[2], as: UTF8.self) else { throw SecurityError("Unable to deserialize: the content type is not UTF-8") }
        guard let encoding = String(validating: fields[3], as: UTF8.self) else { throw SecurityError("Unable to deserialize: the content encoding is not UTF-8") }
        return SecurePayload(signer: signer, signature: signature, innerContentType: type, innerContentEncoding: encoding,
                             body: Array(raw[start...]))
    }

    /// The `application/data` body Celery's `SecureSerializer._pack` writes: base64 text.
    public func encoded() -> [UInt8] {
        var fields: [UInt8] = []
        fields.reserveCapacity(body.count + signature.count * 2 + 128)
        fields += Base64.encode(Array(signer.utf8))
        fields += Self.separator
        fields += Base64.encode(signature)
        fields += Self.separator
        fields += Array(innerContentType.utf8)
        fields += Self.separator
        fields += Array(innerContentEncoding.utf8)
        fields += Self.separator
        fields += body
        return Base64.encode(fields)
    }
}

/// Celery's `celery.exceptions.SecurityError`: a signed message that cannot be trusted
/// (undecodable payload, unknown or expired signer, bad signature). `reason` says which, in
/// Celery's words where Celery has them ("Unknown certificate: ...", "Bad signature: ...").
/// It never holds key material.
public struct SecurityError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}
