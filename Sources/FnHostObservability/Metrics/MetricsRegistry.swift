import FnHostCore

/// The host's metrics: counters, gauges and histograms by family and label values, written in
/// Prometheus' text exposition format (version 0.0.4).
///
/// Guarantees: a family is written only as declared in `MetricNames` (name, type, labels);
/// label values are escaped; counters never go down. Collectors registered with
/// `onCollect` run before each exposition to refresh gauges read from elsewhere (queue
/// lengths, process counts).
///
/// Threading: every method may be called from any thread (one lock).
public final class MetricsRegistry: @unchecked Sendable {
    private struct Histogram {
        var counts: [Int]
        var sum = 0.0
        var count = 0

        /// Counts `value` in every bucket whose upper bound it does not exceed (cumulative).
        mutating func record(_ value: Double, buckets: [Double]) {
            for (i, bound) in buckets.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            count += 1
        }
    }

    private let lock = ConditionLock()
    private var values: [String: [[String]: Double]] = [:]
    private var histograms: [String: [[String]: Histogram]] = [:]
    private var collectors: [@Sendable (MetricsRegistry) -> Void] = []
    private let families: [MetricFamily]

    public init(families: [MetricFamily] = MetricNames.all) {
        self.families = families
    }

    /// Adds `amount` (>= 0) to a counter.
    public func increment(_ family: MetricFamily, _ labels: [String], by amount: Double = 1) {
        precondition(family.kind == .counter && labels.count == family.labels.count, "\(family.name): wrong kind or labels")
        guard amount >= 0 else { return }
        lock.withLock { values[family.name, default: [:]][labels, default: 0] += amount }
    }

    /// Sets a gauge (or a counter mirrored from a monotonic source).
    public func set(_ family: MetricFamily, _ labels: [String], _ value: Double) {
        precondition(family.kind != .histogram && labels.count == family.labels.count, "\(family.name): wrong kind or labels")
        lock.withLock { values[family.name, default: [:]][labels] = value }
    }

    /// Removes every sample of a gauge (before re-setting a set whose members change).
    public func reset(_ family: MetricFamily) {
        lock.withLock { values[family.name] = [:] }
    }

    /// Records one observation in a histogram.
    public func observe(_ family: MetricFamily, _ labels: [String], _ value: Double) {
        precondition(family.kind == .histogram && labels.count == family.labels.count, "\(family.name): wrong kind or labels")
        lock.withLock {
            // In place: a copy taken out of the table and written back would copy `counts` too.
            histograms[family.name, default: [:]][labels, default: Histogram(counts: Array(repeating: 0, count: family.buckets.count))]
                .record(value, buckets: family.buckets)
        }
    }

    /// The current value of a counter or gauge sample (tests, health).
    public func value(_ family: MetricFamily, _ labels: [String]) -> Double? {
        lock.withLock { values[family.name]?[labels] }
    }

    /// Runs `collector` before every exposition.
    public func onCollect(_ collector: @escaping @Sendable (MetricsRegistry) -> Void) {
        lock.withLock { collectors.append(collector) }
    }

    /// The text exposition of every family.
    public func exposition() -> String {
        for collector in lock.withLock({ collectors }) { collector(self) }
        return lock.withLock {
            var out = ""
            for family in families {
                out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n# TYPE \(family.name) \(family.kind.rawValue)\n"
                if family.kind == .histogram {
                    for (labels, h) in (histograms[family.name] ?? [:]).sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                        let base = Self.pairs(family.labels, labels)
                        for (i, bound) in family.buckets.enumerated() {
                            out += "\(family.name)_bucket{\(Self.join(base + [("le", Self.format(bound))]))} \(h.counts[i])\n"
                        }
                        out += "\(family.name)_bucket{\(Self.join(base + [("le", "+Inf")]))} \(h.count)\n"
                        out += "\(family.name)_sum\(Self.braces(base)) \(Self.format(h.sum))\n"
                        out += "\(family.name)_count\(Self.braces(base)) \(h.count)\n"
                    }
                } else {
                    for (labels, v) in (values[family.name] ?? [:]).sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                        out += "\(family.name)\(Self.braces(Self.pairs(family.labels, labels))) \(Self.format(v))\n"
                    }
                }
            }
            return out
        }
    }

    static func pairs(_ names: [String], _ values: [String]) -> [(String, String)] { Array(zip(names, values)) }
    static func braces(_ pairs: [(String, String)]) -> String { pairs.isEmpty ? "" : "{\(join(pairs))}" }
    static func join(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",")
    }

    /// Label values escape backslash, double quote and newline.
    static func escapeLabel(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
    }

    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
