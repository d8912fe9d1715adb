#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension TaskContext {
    /// Decodes the call's positional arguments into the types `A...`, failing with a Python
    /// style `TypeError` (``TaskFailure``) that names the argument and the expected type.
    func decodeArguments<each A: Decodable>() throws -> (repeat each A) {
        let kwargs = keywordArgumentsJSON
        let keys = (try? JSONDecoder().decode(KeyList.self, from: Data(kwargs.utf8)))?.keys ?? []
        if !keys.isEmpty {
            throw TaskFailure(type: "TypeError",
                              message: "\(taskName)() got unexpected keyword arguments: \(keys.sorted().joined(separator: ", "))")
        }

        let data = Data(argumentsJSON.utf8)
        do {
            return try JSONDecoder().decode(ArgumentList<repeat each A>.self, from: data).values
        } catch let error as ArgumentError {
            throw TaskFailure(type: "TypeError", message: error.message(task: taskName, arguments: data))
        } catch {
            throw TaskFailure(type: "TypeError", message: "\(taskName)() arguments are not a JSON array: \(error)")
        }
    }
}

/// Encodes a task's result as JSON; a value JSON cannot hold (such as `Double.nan`) fails the
/// call with `ValueError`, as Python's `json.dumps(..., allow_nan=False)` would.
func encodeResult<R: Encodable>(_ value: R, task: String) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    do {
        return Array(try encoder.encode(value))
    } catch let EncodingError.invalidValue(value, context) {
        throw TaskFailure(type: "ValueError",
                          message: "\(task)() returned a value JSON cannot hold: \(value) (\(context.debugDescription))")
    }
}

/// A JSON array decoded element by element into `A...`.
private struct ArgumentList<each A: Decodable>: Decodable {
    var values: (repeat each A)

    init(from decoder: any Decoder) throws {
        var types: [Any.Type] = []
        for type in repeat (each A).self { types.append(type) }

        var container = try decoder.unkeyedContainer()
        if container.count != types.count {
            throw ArgumentError.count(expected: types, given: container.count ?? 0)
        }
        var position = 0
        func next<T: Decodable>(_: T.Type) throws -> T {
            position += 1
            do {
                return try container.decode(T.self)
            } catch {
                throw ArgumentError.type(position: position, expected: T.self, error: error)
            }
        }
        values = (repeat try next((each A).self))
    }
}

/// Why the arguments did not decode; formatted with the task's name by `message`.
private enum ArgumentError: Error {
    case count(expected: [Any.Type], given: Int)
    case type(position: Int, expected: Any.Type, error: any Error)

    func message(task: String, arguments: Data) -> String {
        switch self {
        case let .count(expected, given):
            let takes = expected.isEmpty
                ? "takes no arguments"
                : "takes \(expected.count) argument\(expected.count == 1 ? "" : "s") (\(expected.map { "\($0)" }.joined(separator: ", ")))"
            return "\(task)() \(takes) but \(given) \(given == 1 ? "was" : "were") given"
        case let .type(position, expected, error):
            let prefix = "\(task)() argument \(position)"
            let path: [any CodingKey]
            let detail: String
            switch error as? DecodingError {
            case let .typeMismatch(_, context)?, let .valueNotFound(_, context)?, let .dataCorrupted(context)?:
                (path, detail) = (context.codingPath, context.debugDescription)
            case let .keyNotFound(key, context)?:
                (path, detail) = (context.codingPath, "missing key \"\(key.stringValue)\"")
            default:
                (path, detail) = ([], "\(error)")
            }
            // The path inside the argument (for a struct or array argument), without its index.
            let inner = path.dropFirst().map { key in
                key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)"
            }.joined()
            if !inner.isEmpty {
                return "\(prefix) (\(expected)) at \(inner): \(detail)"
            }
            if case .keyNotFound? = error as? DecodingError {
                return "\(prefix) must be \(expected): \(detail)"
            }
            // The argument itself has the wrong JSON type (or a number out of range): say what it is.
            let kinds = try? JSONDecoder().decode([JSONKind].self, from: arguments)
            if let kinds, position <= kinds.count {
                switch kinds[position - 1] {
                case .array, .object:
                    // A container of the right kind with something wrong inside it.
                    if !(error is DecodingError) { return "\(prefix) (\(expected)): \(detail)" }
                default: break
                }
                return "\(prefix) must be \(expected), not \(kinds[position - 1].description)"
            }
            return "\(prefix) must be \(expected): \(detail)"
        }
    }
}

/// The kind of a JSON value (and a number's value), for error messages.
private enum JSONKind: Decodable, CustomStringConvertible {
    case null, boolean, number(Double), string, array, object

    init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer() {
            if single.decodeNil() { self = .null; return }
            if (try? single.decode(Bool.self)) != nil { self = .boolean; return }
            if let number = try? single.decode(Double.self) { self = .number(number); return }
            if (try? single.decode(String.self)) != nil { self = .string; return }
        }
        self = (try? decoder.unkeyedContainer()) != nil ? .array : .object
    }

    var description: String {
        switch self {
        case .null: "null"
        case .boolean: "boolean"
        case let .number(value):
            value == value.rounded() && abs(value) < 1e15 ? "number \(Int(value))" : "number \(value)"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// The keys of a JSON object (the keyword arguments).
private struct KeyList: Decodable {
    var keys: [String]

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
    }
}
