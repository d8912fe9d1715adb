import CFFI
import CeleryProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A plain C function called through libffi: positional JSON arguments are converted to C
/// values by the signature, and the return value back to JSON.
///
/// An argument that does not fit its type (wrong JSON type, out of range, a string with a NUL,
/// wrong count, any keyword argument) is refused with a `TypeError` naming the argument: the
/// function is never called with it. A returned `str` is copied and never freed (return static
/// or thread-local storage); `NULL` becomes JSON `null`.
public final class NativeFunction {
    public let name: String
    public let signature: NativeSignature
    private let symbol: UnsafeMutableRawPointer
    private var cif = ffi_cif()
    private let argTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>

    /// Prepares the call interface; fails only if libffi refuses it.
    public init(name: String, symbol: UnsafeMutableRawPointer, signature: NativeSignature) throws(NativeSignature.Error) {
        self.name = name
        self.symbol = symbol
        self.signature = signature
        argTypes = .allocate(capacity: max(1, signature.argumentTypes.count))
        for (i, t) in signature.argumentTypes.enumerated() { argTypes[i] = Self.ffiType(t) }
        let status = ffi_prep_cif(&cif, FFI_DEFAULT_ABI, UInt32(signature.argumentTypes.count), Self.ffiType(signature.returnType), argTypes)
        guard status == FFI_OK else { throw NativeSignature.Error(description: "libffi refused signature \(signature) (status \(status))") }
    }

    deinit { argTypes.deallocate() }

    static func ffiType(_ t: NativeSignature.CType) -> UnsafeMutablePointer<ffi_type> {
        switch t {
        case .i32: return fnhost_ffi_type_sint32()
        case .i64: return fnhost_ffi_type_sint64()
        case .u32: return fnhost_ffi_type_uint32()
        case .u64: return fnhost_ffi_type_uint64()
        case .f32: return fnhost_ffi_type_float()
        case .f64: return fnhost_ffi_type_double()
        case .bool: return fnhost_ffi_type_uint8()
        case .str: return fnhost_ffi_type_pointer()
        case .void: return fnhost_ffi_type_void()
        }
    }

    /// Calls the function with `args` (a JSON array) and `kwargs` (a JSON object).
    public func call(argsJSON: [UInt8], kwargsJSON: [UInt8]) -> Result<[UInt8], TaskException> {
        func typeError(_ message: String) -> Result<[UInt8], TaskException> {
            .failure(TaskException(type: "TypeError", module: "builtins", message: "\(name)(): \(message)"))
        }
        guard case .array(let args)? = try? JSONParser.parse(argsJSON) else { return typeError("args must be a JSON array") }
        if case .object(let kwargs)? = try? JSONParser.parse(kwargsJSON), kwargs.count > 0 {
            return typeError("native functions take positional arguments only, got keyword arguments: \(kwargs.keys.joined(separator: ", "))")
        }
        let types = signature.argumentTypes
        guard args.count == types.count else {
            return typeError("takes \(types.count) positional argument\(types.count == 1 ? "" : "s") (\(signature)) but \(args.count) \(args.count == 1 ? "was" : "were") given")
        }
        // One 8-byte slot per argument, plus owned C strings for `str`.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: max(8, 8 * types.count), alignment: 8)
        defer { slots.deallocate() }
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { strings.forEach { $0.deallocate() } }
        let values = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: max(1, types.count))
        defer { values.deallocate() }
        for (i, (type, value)) in zip(types, args).enumerated() {
            let slot = slots + 8 * i
            values[i] = slot
            let what = "argument \(i + 1) (\(type.rawValue))"
            switch type {
            case .i32, .i64, .u32, .u64:
                if case .uint(let u) = value {
                    guard type == .u64 else { return typeError("\(what) out of range: \(u)") }
                    slot.storeBytes(of: u, as: UInt64.self)
                    continue
                }
                guard case .int(let n) = value else { return typeError("\(what) must be an integer, got \(value.typeName)") }
                switch type {
                case .i32:
                    guard let v = Int32(exactly: n) else { return typeError("\(what) out of range: \(n)") }
                    slot.storeBytes(of: v, as: Int32.self)
                case .u32:
                    guard let v = UInt32(exactly: n) else { return typeError("\(what) out of range: \(n)") }
                    slot.storeBytes(of: v, as: UInt32.self)
                case .u64:
                    guard let v = UInt64(exactly: n) else { return typeError("\(what) out of range: \(n)") }
                    slot.storeBytes(of: v, as: UInt64.self)
                default:
                    slot.storeBytes(of: n, as: Int64.self)
                }
            case .f32, .f64:
                guard let d = value.doubleValue else { return typeError("\(what) must be a number, got \(value.typeName)") }
                if type == .f32 {
                    let f = Float(d)
                    if f.isInfinite && d.isFinite { return typeError("\(what) out of range: \(d)") }
                    slot.storeBytes(of: f, as: Float.self)
                } else {
                    slot.storeBytes(of: d, as: Double.self)
                }
            case .bool:
                guard case .bool(let b) = value else { return typeError("\(what) must be true or false, got \(value.typeName)") }
                slot.storeBytes(of: b ? 1 : 0, as: UInt8.self)
            case .str:
                guard case .string(let s) = value else { return typeError("\(what) must be a string, got \(value.typeName)") }
                let utf8 = Array(s.utf8)
                if utf8.contains(0) { return typeError("\(what) contains a NUL character") }
                let c = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
                for (k, byte) in utf8.enumerated() { c[k] = CChar(bitPattern: byte) }
                c[utf8.count] = 0
                strings.append(c)
                slot.storeBytes(of: UnsafeRawPointer(c), as: UnsafeRawPointer.self)
            case .void:
                return typeError("\(what): void is not an argument type")
            }
        }
        var ret = (UInt64(0), UInt64(0))
        let fn = unsafeBitCast(symbol, to: (@convention(c) () -> Void).self)
        withUnsafeMutableBytes(of: &ret) { r in
            ffi_call(&cif, fn, r.baseAddress, values)
        }
        guard let json = Self.resultJSON(signature.returnType, ret) else {
            return .failure(TaskException(type: "ValueError", module: "builtins", message: "\(name)() returned a string that is not valid UTF-8"))
        }
        return .success(json)
    }

    static func resultJSON(_ type: NativeSignature.CType, _ ret: (UInt64, UInt64)) -> [UInt8]? {
        var raw = ret
        return withUnsafeBytes(of: &raw) { r -> [UInt8]? in
            // libffi widens integral returns smaller than a word to a full ffi_arg.
            let word = r.load(as: UInt64.self)
            switch type {
            case .i32: return Array(String(Int32(truncatingIfNeeded: word)).utf8)
            case .u32: return Array(String(UInt32(truncatingIfNeeded: word)).utf8)
            case .i64: return Array(String(Int64(bitPattern: word)).utf8)
            case .u64: return Array(String(word).utf8)
            case .bool: return Array((UInt8(truncatingIfNeeded: word) != 0 ? "true" : "false").utf8)
            case .f32: return JSONWriter.bytes(.double(Double(r.load(as: Float.self))))
            case .f64: return JSONWriter.bytes(.double(r.load(as: Double.self)))
            case .void: return Array("null".utf8)
            case .str:
                guard let p = UnsafePointer<CChar>(bitPattern: UInt(word)) else { return Array("null".utf8) }
                let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
                guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
                return JSONWriter.bytes(.string(s))
            }
        }
    }
}
