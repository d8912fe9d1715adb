import CeleryProtocol

/// Celery's message signing (the `auth` serializer) as the host uses it: verifying the task
/// messages it receives, signing the task messages it publishes (retries, chain steps,
/// callbacks, chord bodies) and, with `result_serializer: auth`, the results it stores.
///
/// The implementation (FnHostSecurity, over OpenSSL) holds the private key; nothing here ever
/// exposes it. Threading: called from the consumer's thread and the thread carrying out
/// settlements (see `Broker`) at once.
public protocol MessageSigning: Sendable {
    /// Verifies an `application/data` body against the certificate store and returns what it
    /// signs. Throws `SecurityError` saying why it cannot be trusted (undecodable, unknown
    /// signer, expired certificate, bad signature).
    func verify(_ payload: [UInt8]) throws(SecurityError) -> SecurePayload

    /// Signs `body` (serialized as `contentType`/`contentEncoding`) with the host's key and
    /// returns the `application/data` body Celery's `auth` serializer would write.
    func sign(_ body: [UInt8], contentType: String, contentEncoding: String) throws(SecurityError) -> [UInt8]
}

extension MessageSigning {
    /// `message` with its signed body opened: the content type, encoding and body the producer
    /// signed. Headers are not signed (Celery signs the body only) and are kept as they are.
    public func opened(_ message: TaskMessage) throws(SecurityError) -> TaskMessage {
        let payload = try verify(message.body)
        var opened = message
        opened.contentType = payload.innerContentType
        opened.contentEncoding = payload.innerContentEncoding
        opened.body = payload.body
        return opened
    }

    /// `message` signed, unless it already is (a signed message fnhost passes on unchanged).
    public func sealed(_ message: TaskMessage) throws(SecurityError) -> TaskMessage {
        guard !message.isSigned else { return message }
        var sealed = message
        sealed.body = try sign(message.body, contentType: message.contentType, contentEncoding: message.contentEncoding)
        sealed.contentType = SecurePayload.contentType
        sealed.contentEncoding = SecurePayload.contentEncoding
        return sealed
    }
}
