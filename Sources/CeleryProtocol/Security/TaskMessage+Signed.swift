extension TaskMessage {
    /// Whether the body is Celery's `auth` serializer's (`application/data`): signed, to be
    /// verified and opened (`SecurePayload`) before anything reads it.
    public var isSigned: Bool {
        (contentType.split(separator: ";").first.map { $0.trimmingSpaces() } ?? "") == SecurePayload.contentType
    }
}
