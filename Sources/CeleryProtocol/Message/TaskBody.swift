/// The JSON body of a v2 task message, `[args, kwargs, embed]`, decoded just enough to hand
/// `args` and `kwargs` to a plugin: their exact bytes, with kombu's type wrappers unwrapped.
public struct TaskBody: Sendable {
    /// The positional arguments: a JSON array.
    public let argsJSON: [UInt8]
    /// The keyword arguments: a JSON object.
    public let kwargsJSON: [UInt8]

    /// Decodes `body`. Throws `.undecodableBody` with a reason a user can act on.
    public init(json body: [UInt8]) throws(MessageDecodingError) {
        let ranges: [Range<Int>]
        do {
            ranges = try body.withUnsafeBufferPointer { (buffer) throws(JSONParser.Error) in
                try JSONParser.topLevelElementRanges(buffer)
            }
        } catch {
            throw MessageDecodingError(.undecodableBody, "the body is not a JSON [args, kwargs, embed] array: \(error)")
        }
        guard ranges.count == 3 || ranges.count == 2 else {
            throw MessageDecodingError(.undecodableBody, "the body must be [args, kwargs, embed], got an array of \(ranges.count) elements")
        }
        var args = Array(body[ranges[0]])
        var kwargs = Array(body[ranges[1]])
        guard args.first == UInt8(ascii: "[") else { throw MessageDecodingError(.undecodableBody, "args (body[0]) must be a JSON array") }
        guard kwargs.first == UInt8(ascii: "{") else { throw MessageDecodingError(.undecodableBody, "kwargs (body[1]) must be a JSON object") }
        if KombuTypes.mayContainWrapper(args) { args = KombuTypes.unwrapping(args) }
        if KombuTypes.mayContainWrapper(kwargs) { kwargs = KombuTypes.unwrapping(kwargs) }
        self.argsJSON = args
        self.kwargsJSON = kwargs
    }

    /// `[args, kwargs, {callbacks: null, errbacks: null, chain: null, chord: null}]`, as a
    /// producer would send it.
    public static func encode(args: JSON, kwargs: JSON = .object([:])) -> [UInt8] {
        JSONWriter.bytes(.array([args, kwargs, .object(["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil])]))
    }
}
