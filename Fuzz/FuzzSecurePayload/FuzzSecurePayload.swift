// libFuzzer target: the signed payload decoder (Celery's `auth` serializer). See Fuzz/README.md.
import CeleryProtocol

/// Reads the input as the body of a signed message (`application/data`): signer, signature,
/// inner content type, encoding and body. Any input may be refused; none may trap, and what
/// decodes must encode back to a payload that decodes to the same fields.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSecurePayload(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let payload = try? SecurePayload.decode(bytes) else { return 0 }
    let again = try? SecurePayload.decode(payload.encoded())
    precondition(again?.signer == payload.signer && again?.signature == payload.signature
                 && again?.body == payload.body, "a decoded signed payload did not survive encoding")
    return 0
}
