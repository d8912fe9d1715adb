import CeleryProtocol

/// The type of a plain scalar, resolved as YAML 1.1 does (and as Yams, which fnhost used
/// before, did): `yes`/`no`/`on`/`off` are booleans too, `0755` is octal, `1:30` is 90.
/// Quoted and block scalars are always strings. Timestamps stay strings.
extension YAMLScalar {
    public enum Kind: Sendable, Equatable {
        case null, bool, int, float, string
    }

    public var kind: Kind {
        guard style == .plain else { return .string }
        if Self.nulls.contains(text) { return .null }
        if Self.trues.contains(text) || Self.falses.contains(text) { return .bool }
        if Self.integer(text).matches { return .int }
        if Self.float(text) != nil { return .float }
        return .string
    }

    /// The boolean, when the scalar resolves to one.
    public var bool: Bool? {
        guard style == .plain else { return nil }
        if Self.trues.contains(text) { return true }
        if Self.falses.contains(text) { return false }
        return nil
    }

    /// The integer, when the scalar resolves to one that fits 64 bits.
    public var int: Int64? { style == .plain ? Self.integer(text).value : nil }

    /// The number, when the scalar resolves to an integer or a float.
    public var double: Double? {
        guard style == .plain else { return nil }
        let integer = Self.integer(text)
        if integer.matches { return integer.value.map(Double.init) }
        return Self.float(text)
    }

    /// The scalar as JSON by its resolved type; an integer too large for 64 bits stays a string.
    public var json: JSON {
        switch kind {
        case .null: .null
        case .bool: .bool(bool!)
        case .int: int.map(JSON.int) ?? .string(text)
        case .float: .double(double!)
        case .string: .string(text)
        }
    }

    static let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
    static let trues: Set<String> = ["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]
    static let falses: Set<String> = ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]

    /// YAML 1.1 integers: decimal, `0b`, `0o` or a leading `0` (octal), `0x`, and base 60
    /// (`1:30`), with `_` as a separator and an optional sign. `matches`: written as an integer;
    /// `value`: nil when it does not fit 64 bits.
    static func integer(_ text: String) -> (matches: Bool, value: Int64?) {
        var s = Substring(text)
        var negative = false
        if let first = s.first, first == "-" || first == "+" {
            negative = first == "-"
            s = s.dropFirst()
        }
        guard let first = s.first, first.isASCII, first.isNumber else { return (false, nil) }
        let magnitude: (matches: Bool, value: Int64?)
        if s.contains(":") {
            // Base 60: the first part starts with 1-9, every later part is 0-59.
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts[0].first != "0" else { return (false, nil) }
            var total: Int64? = 0
            for (index, part) in parts.enumerated() {
                let (ok, value) = index == 0 ? digits(part, radix: 10) : digits(part, radix: 10, separators: false)
                guard ok, index == 0 || (part.count <= 2 && (value ?? 60) < 60) else { return (false, nil) }
                if let t = total, let value {
                    let (shifted, o1) = t.multipliedReportingOverflow(by: 60)
                    let (sum, o2) = shifted.addingReportingOverflow(value)
                    total = o1 || o2 ? nil : sum
                } else {
                    total = nil
                }
            }
            magnitude = (true, total)
        } else if s.hasPrefix("0b") {
            magnitude = digits(s.dropFirst(2), radix: 2)
        } else if s.hasPrefix("0x") {
            magnitude = digits(s.dropFirst(2), radix: 16)
        } else if s.hasPrefix("0o") {
            magnitude = digits(s.dropFirst(2), radix: 8)
        } else if s.hasPrefix("0"), s.count > 1 {
            magnitude = digits(s.dropFirst(), radix: 8)
        } else {
            magnitude = digits(s, radix: 10)
        }
        guard magnitude.matches else { return (false, nil) }
        return (true, magnitude.value.map { negative ? -$0 : $0 })
    }

    /// Digits of `radix`, with `_` separators unless `separators` is false: whether the text is
    /// that (at least one digit), and its value (nil on overflow).
    private static func digits(_ s: Substring, radix: Int, separators: Bool = true) -> (matches: Bool, value: Int64?) {
        let clean = separators ? s.filter { $0 != "_" } : String(s)
        guard !clean.isEmpty, clean.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true }) else { return (false, nil) }
        return (true, Int64(clean, radix: radix))
    }

    /// YAML 1.1 floats: `1.5`, `1.`, `.5`, `1e3`, `1.5e-3`, `.inf`, `-.inf`, `.nan`, with `_`
    /// separators; base 60 floats (`1:30.5`) too.
    static func float(_ text: String) -> Double? {
        var s = Substring(text)
        var sign = 1.0
        if s == ".nan" || s == ".NaN" || s == ".NAN" { return .nan }
        if let first = s.first, first == "-" || first == "+" {
            sign = first == "-" ? -1 : 1
            s = s.dropFirst()
        }
        if s == ".inf" || s == ".Inf" || s == ".INF" { return sign * .infinity }
        if s.contains(":") {
            guard let dot = s.lastIndex(of: "."), let whole = integer(String(s[..<dot])).value,
                  let fraction = Double("0" + s[dot...].filter { $0 != "_" }) else { return nil }
            return sign * (Double(whole) + fraction)
        }
        // [0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?  or  \.[0-9_]+([eE][-+][0-9]+)?
        var mantissa = s
        var exponent: Substring = ""
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = s[..<e]
            exponent = s[s.index(after: e)...]
            var digits = exponent
            if let first = digits.first, first == "-" || first == "+" { digits = digits.dropFirst() }
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        }
        guard let first = mantissa.first else { return nil }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        func numeric(_ p: Substring) -> Bool { p.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "_" } }
        if first == "." {
            // As Yams reads it: no sign, and a signed exponent.
            let signedExponent = exponent.first == "-" || exponent.first == "+"
            guard text.first == ".", exponent.isEmpty || signedExponent,
                  parts.count == 2, parts[1].first?.isNumber == true, numeric(parts[1]) else { return nil }
        } else {
            guard first.isASCII, first.isNumber, numeric(parts[0]), parts.count == 1 || numeric(parts[1]) else { return nil }
        }
        let clean = mantissa.filter { $0 != "_" } + (exponent.isEmpty ? "" : "e" + exponent)
        let literal = clean.hasSuffix(".") ? clean + "0" : (clean.hasPrefix(".") ? "0" + clean : clean)
        return Double(literal).map { sign * $0 }
    }
}
