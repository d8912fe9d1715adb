import Dispatch

/// Runs `body` once after `seconds` (clamped to 0...1e9, NaN meaning 0), on a global dispatch queue.
public func startTimer(after seconds: Double, _ body: @escaping @Sendable () -> Void) {
    let clamped = seconds.isNaN ? 0 : min(max(seconds, 0), 1e9)
    DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int((clamped * 1000).rounded(.up))), execute: body)
}
