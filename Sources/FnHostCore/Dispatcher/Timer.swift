import Dispatch

/// Runs `body` once after `seconds`, on a global dispatch queue.
public func startTimer(after seconds: Double, _ body: @escaping @Sendable () -> Void) {
    DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int((seconds * 1000).rounded(.up))), execute: body)
}
