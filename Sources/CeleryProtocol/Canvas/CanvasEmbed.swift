/// The third element of a v2 body, `{"callbacks", "errbacks", "chain", "chord"}`
/// (celery-protocol.md §1.3), decoded into signatures.
///
/// `chain` holds the remaining steps in **reverse** order: the next step is the last element.
/// It is `nil` when the message carries `null` (no chain) and `[]` on the last step of a chain.
public struct CanvasEmbed: Sendable, Equatable {
    /// `link=` signatures, run with the result on success.
    public var callbacks: [Signature]
    /// `link_error=` signatures, run with the task id on failure.
    public var errbacks: [Signature]
    /// The remaining chain steps, reverse order.
    public var chain: [Signature]?
    /// The chord body, when this task is a chord header member.
    public var chord: Signature?

    public init(callbacks: [Signature] = [], errbacks: [Signature] = [], chain: [Signature]? = nil, chord: Signature? = nil) {
        self.callbacks = callbacks
        self.errbacks = errbacks
        self.chain = chain
        self.chord = chord
    }

    /// Nothing to do after the task: no callbacks, errbacks, chain steps or chord.
    public var isEmpty: Bool { callbacks.isEmpty && errbacks.isEmpty && (chain ?? []).isEmpty && chord == nil }

    /// Decodes an embed object (a missing or `null` embed is empty).
    public init(json: JSON?) throws(MessageDecodingError) {
        switch json {
        case nil, .null?:
            self.init()
        case .object(let o)?:
            let chain: [Signature]?
            switch o["chain"] {
            case nil, .null?: chain = nil
            case .array?: chain = try Signature.list(o["chain"], what: "embed.chain")
            case let other?: throw MessageDecodingError(.undecodableBody, "embed.chain must be a list of signatures, not \(other.typeName)")
            }
            let chord: Signature?
            switch o["chord"] {
            case nil, .null?: chord = nil
            case let value?: chord = try Signature(json: value)
            }
            self.init(callbacks: try Signature.list(o["callbacks"], what: "embed.callbacks"),
                      errbacks: try Signature.list(o["errbacks"], what: "embed.errbacks"),
                      chain: chain, chord: chord)
        case let other?:
            throw MessageDecodingError(.undecodableBody, "the body's embed (body[2]) must be an object, not \(other.typeName)")
        }
    }

    /// The embed of a serialized v2 body `[args, kwargs, embed]`. Only the third element is
    /// parsed; a body with two elements has an empty embed.
    public init(body: [UInt8]) throws(MessageDecodingError) {
        // Fast path: a body that ends with a default producer's empty embed has none to parse
        // (a JSON string cannot end just before the array's closing bracket).
        if body.count > Self.emptyEmbed.count + 1, body.last == UInt8(ascii: "]"),
           body[(body.count - 1 - Self.emptyEmbed.count)..<(body.count - 1)].elementsEqual(Self.emptyEmbed) {
            self.init()
            return
        }
        let ranges: [Range<Int>]
        do {
            ranges = try body.withUnsafeBufferPointer { (buffer) throws(JSONParser.Error) in try JSONParser.topLevelElementRanges(buffer) }
        } catch {
            throw MessageDecodingError(.undecodableBody, "the body is not a JSON [args, kwargs, embed] array: \(error)")
        }
        guard ranges.count == 3 else { self.init(); return }
        let slice = body[ranges[2]]
        if slice.elementsEqual(Self.emptyEmbed) { self.init(); return }
        let json: JSON
        do { json = try JSONParser.parse(slice) } catch {
            throw MessageDecodingError(.undecodableBody, "the body's embed is not valid JSON: \(error)")
        }
        try self.init(json: json)
    }

    /// What a default producer sends for a task with no canvas, byte for byte (a fast path).
    private static let emptyEmbed = Array(#"{"callbacks": null, "errbacks": null, "chain": null, "chord": null}"#.utf8)

    /// The embed object as a producer writes it.
    public var json: JSON {
        .object([
            "callbacks": callbacks.isEmpty ? .null : .array(callbacks.map(\.json)),
            "errbacks": errbacks.isEmpty ? .null : .array(errbacks.map(\.json)),
            "chain": chain.map { .array($0.map(\.json)) } ?? .null,
            "chord": chord?.json ?? .null,
        ])
    }
}
