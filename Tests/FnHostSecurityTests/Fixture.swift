import Foundation
import Testing

/// A throwaway signer (RSA 2048, self-signed, valid until 2125) and a message it signed with a
/// real Celery 5.7 producer: made by scripts/capture-signed-fixtures.py.
enum Fixture {
    static func path(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"),
                     "fixture \(name) is missing from the test bundle").path
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: try path(name))))
    }

    static let key = "signer.key"
    static let encryptedKey = "signer.encrypted.key"
    static let encryptedKeyPassword = "fixture-password"
    static let certificate = "signer.pem"
    static let signedTaskEnvelope = "signed_task_message.raw.json"
    static let signerId = "fnhost fixtures fixture signer 4242"
}
