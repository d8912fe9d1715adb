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
    fileprivate struct Histogram {
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

    /// One counter or gauge sample. Guarded by the registry's lock; written out once `written`.
    fileprivate final class Sample: @unchecked Sendable {
        var value = 0.0
        var written = false
    }

    /// One histogram sample. Guarded by the registry's lock; written out once observed.
    fileprivate final class HistogramSample: @unchecked Sendable {
        var histogram: Histogram
        let buckets: [Double]
        init(buckets: [Double]) {
            self.buckets = buckets
            self.histogram = Histogram(counts: Array(repeating: 0, count: buckets.count))
        }
    }

    /// A counter's sample with fixed label values: adding to it skips looking the labels up.
    /// Valid for the registry's lifetime (counters are never reset).
    public struct CounterSeries: Sendable {
        fileprivate let sample: Sample
    }

    /// A histogram's sample with fixed label values (see `CounterSeries`).
    public struct HistogramSeries: Sendable {
        fileprivate let sample: HistogramSample
    }

    private let lock = ConditionLock()
    private var values: [String: [[String]: Sample]] = [:]
    private var histograms: [String: [[String]: HistogramSample]] = [:]
    private var collectors: [@Sendable (MetricsRegistry) -> Void] = []
    private let families: [MetricFamily]

    public init(families: [MetricFamily] = MetricNames.all) {
        self.families = families
    }

    /// The sample of `family` with `labels`, created if need be. Lock held.
    private func sample(_ family: MetricFamily, _ labels: [String]) -> Sample {
        if let existing = values[family.name]?[labels] { return existing }
        let created = Sample()
        values[family.name, default: [:]][labels] = created
        return created
    }

    /// The series of a counter with `labels`, to add to without looking the labels up again.
    /// It is written out once something is added (a series never added to stays absent).
    public func counter(_ family: MetricFamily, _ labels: [String]) -> CounterSeries {
        precondition(family.kind == .counter && labels.count == family.labels.count, "\(family.name): wrong kind or labels")
        return lock.withLock { CounterSeries(sample: sample(family, labels)) }
    }

    /// The series of a histogram with `labels` (see `counter`).
    public func histogram(_ family: MetricFamily, _ labels: [String]) -> HistogramSeries {
        precondition(family.kind == .histogram && labels.count == family.labels.count, "\(family.name): wrong kind or labels")
        return lock.withLock {
            if let existing = histograms[family.name]?[labels] { return HistogramSeries(sample: existing) }
            let created = HistogramSample(buckets: family.buckets)
            histograms[family.name, default: [:]][labels] = created
            return HistogramSeries(sample: created)
        }
    }

    /// Adds `amount` (>= 0) to a counter.
    public func increment(_ family: MetricFamily, _ labels: [String], by amount: Double = 1) {
        increment(counter(family, labels), by: amount)
    }

    /// Adds `amount` (>= 0) to a counter series.
    public func increment(_ series: CounterSeries, by amount: Double = 1) {
        guard amount >= 0 else { return }
        lock.withLock {
            series.sample.value += amount
            series.sample.written = true
        }
    }

    /// Sets a gauge (or a counter mirrored from a monotonic source).
    public func set(_ family: MetricFamily, _ labels: [String], _ value: Double) {
        precondition(family.kind != .histogram && labels.count == family.labels.count, "\(family.name): wrong kind or labels")
        lock.withLock {
            let s = sample(family, labels)
            s.value = value
            s.written = true
        }
    }

    /// Removes every sample of a gauge (before re-setting a set whose members change).
    public func reset(_ family: MetricFamily) {
        precondition(family.kind == .gauge, "\(family.name): only gauges are reset")
        lock.withLock { values[family.name] = [:] }
    }

    /// Records one observation in a histogram.
    public func observe(_ family: MetricFamily, _ labels: [String], _ value: Double) {
        observe(histogram(family, labels), value)
    }

    /// Records one observation in a histogram series.
    public func observe(_ series: HistogramSeries, _ value: Double) {
        lock.withLock { series.sample.histogram.record(value, buckets: series.sample.buckets) }
    }

    /// The current value of a counter or gauge sample (tests, health).
    public func value(_ family: MetricFamily, _ labels: [String]) -> Double? {
        lock.withLock { values[family.name]?[labels].flatMap { $0.written ? $0.value : nil } }
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
                    for (labels, sample) in (histograms[family.name] ?? [:]).sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                        let h = sample.histogram
                        guard h.count > 0 else { continue }
                        let base = Self.pairs(family.labels, labels)
                        for (i, bound) in family.buckets.enumerated() {
                            out += "\(family.name)_bucket{\(Self.join(base + [("le", Self.format(bound))]))} \(h.counts[i])\n"
                        }
                        out += "\(family.name)_bucket{\(Self.join(base + [("le", "+Inf")]))} \(h.count)\n"
                        out += "\(family.name)_sum\(Self.braces(base)) \(Self.format(h.sum))\n"
                        out += "\(family.name)_count\(Self.braces(base)) \(h.count)\n"
                    }
                } else {
                    for (labels, sample) in (values[family.name] ?? [:]).sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) where sample.written {
                        out += "\(family.name)\(Self.braces(Self.pairs(family.labels, labels))) \(Self.format(sample.value))\n"
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
