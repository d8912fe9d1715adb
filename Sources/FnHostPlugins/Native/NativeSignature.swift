/// The signature language of `register_native` (plugin-abi.md): `RET(ARG,ARG,...)` over
/// `i32 i64 u32 u64 f32 f64 bool str void`, for example `i64(i64,i64)` or `void(str)`.
/// `void` is a return type only; `f()` takes no arguments.
public struct NativeSignature: Sendable, Equatable, CustomStringConvertible {
    /// A C type of the signature language.
    public enum CType: String, Sendable, CaseIterable {
        case i32, i64, u32, u64, f32, f64, bool, str, void
    }

    public let returnType: CType
    public let argumentTypes: [CType]

    /// Why a signature did not parse.
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public init(returnType: CType, argumentTypes: [CType]) {
        self.returnType = returnType
        self.argumentTypes = argumentTypes
    }

    /// Parses `text`; spaces around names are allowed.
    public init(parsing text: String) throws(Error) {
        let known = CType.allCases.map(\.rawValue).joined(separator: " ")
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else {
            throw Error(description: "signature \"\(text)\" must look like RET(ARG,...), for example i64(i64,i64)")
        }
        let ret = String(text[..<open]).trimmingSpaces()
        guard let returnType = CType(rawValue: ret) else {
            throw Error(description: "signature \"\(text)\": unknown return type \"\(ret)\" (types: \(known))")
        }
        let inner = String(text[text.index(after: open)..<text.index(before: text.endIndex)]).trimmingSpaces()
        var args: [CType] = []
        if !inner.isEmpty {
            for (i, part) in inner.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
                let name = String(part).trimmingSpaces()
                guard let type = CType(rawValue: name) else {
                    throw Error(description: "signature \"\(text)\": unknown type \"\(name)\" for argument \(i + 1) (types: \(known))")
                }
                guard type != .void else {
                    throw Error(description: "signature \"\(text)\": void is not an argument type (write RET() for no arguments)")
                }
                args.append(type)
            }
        }
        guard args.count <= 32 else { throw Error(description: "signature \"\(text)\": more than 32 arguments") }
        self.init(returnType: returnType, argumentTypes: args)
    }

    public var description: String {
        "\(returnType.rawValue)(\(argumentTypes.map(\.rawValue).joined(separator: ",")))"
    }
}

extension String {
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" }
        return String(self.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
