/// kombu's in-band JSON type wrappers `{"__type__": T, "__value__": V}` (celery-protocol.md §1.5).
///
/// A plugin sees plain JSON: `datetime`, `date`, `time` become their ISO strings, `decimal` its
/// string, `uuid` its hex string, `bytes` its text, `base64` its base64 text.
public enum KombuTypes {
    /// Cheap pre-check: only bodies that mention `__type__` need the slow path.
    public static func mayContainWrapper(_ bytes: [UInt8]) -> Bool {
        let needle = Array("__type__".utf8)
        guard bytes.count >= needle.count else { return false }
        var i = 0
        while i + needle.count <= bytes.count {
            if bytes[i] == needle[0] && Array(bytes[i..<(i + needle.count)]) == needle { return true }
            i += 1
        }
        return false
    }

    /// The value with every wrapper replaced by its plain value.
    public static func unwrap(_ value: JSON) -> JSON {
        switch value {
        case .array(let items): return .array(items.map(unwrap))
        case .object(let object):
            if object.count == 2, case .string(let type)? = object["__type__"], let inner = object["__value__"] {
                switch (type, inner) {
                case ("uuid", .object(let o)): return o["hex"] ?? inner
                case (_, .string), (_, .int), (_, .double): return inner
                default: return unwrap(inner)
                }
            }
            return .object(JSONObject(object.entries.map { (key: $0.key, value: unwrap($0.value)) }))
        default: return value
        }
    }

    /// `bytes` re-serialized with wrappers unwrapped; unchanged when it does not parse.
    public static func unwrapping(_ bytes: [UInt8]) -> [UInt8] {
        guard let value = try? JSONParser.parse(bytes) else { return bytes }
        return JSONWriter.bytes(unwrap(value))
    }
}
