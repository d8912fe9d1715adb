extension TaskMessage {
    /// Whether the body is Celery's `auth` serializer's (`application/data`): signed, to be
    /// verified and opened (`SecurePayload`) before anything reads it.
    public var isSigned: Bool {
        if contentType == "application/json" { return false }  // the common case, without splitting
        return (contentType.split(separator: ";").first.map { $0.trimmingSpaces() } ?? "") == SecurePayload.contentType
    }
}
