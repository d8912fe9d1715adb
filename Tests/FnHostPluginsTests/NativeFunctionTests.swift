import CeleryProtocol
import FnHostPlugins
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// C functions of libc and libm called through libffi with a signature, as `register_native` does.
@Suite struct NativeFunctionTests {
    static func symbol(_ name: String, library: String? = nil) throws -> UnsafeMutableRawPointer {
        let handle = try #require(dlopen(library, RTLD_NOW), "dlopen(\(library ?? "nil")) failed")
        return try #require(dlsym(handle, name), "dlsym(\(name)) failed")
    }

    static func native(_ name: String, _ signature: String, library: String? = nil) throws -> NativeFunction {
        try NativeFunction(name: name, symbol: try symbol(name, library: library), signature: try NativeSignature(parsing: signature))
    }

    func call(_ function: NativeFunction, _ args: String, kwargs: String = "{}") -> Result<String, TaskException> {
        function.call(argsJSON: Array(args.utf8), kwargsJSON: Array(kwargs.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func absTakesAndReturnsI32() throws {
        let abs = try Self.native("abs", "i32(i32)")
        #expect(try call(abs, "[-5]").get() == "5")
        #expect(try call(abs, "[2147483647]").get() == "2147483647")
        #expect(try call(abs, "[-2147483647]").get() == "2147483647")
    }

    @Test func labsTakesAndReturnsI64() throws {
        let labs = try Self.native("labs", "i64(i64)")
        #expect(try call(labs, "[-9000000000]").get() == "9000000000")
        #expect(try call(labs, "[9223372036854775807]").get() == "9223372036854775807")
    }

    @Test func hypotTakesAndReturnsF64() throws {
        let hypot = try Self.native("hypot", "f64(f64,f64)", library: "libm.so.6")
        #expect(try call(hypot, "[3.0, 4.0]").get() == "5.0")
        // Integers are accepted for a double argument.
        #expect(try call(hypot, "[5, 12]").get() == "13.0")
    }

    @Test func strlenTakesAStringAndReturnsU64() throws {
        let strlen = try Self.native("strlen", "u64(str)")
        #expect(try call(strlen, #"["hello"]"#).get() == "5")
        #expect(try call(strlen, #"[""]"#).get() == "0")
        // UTF-8 bytes, not characters.
        #expect(try call(strlen, #"["h\u00e9llo 😀"]"#).get() == "11")
    }

    @Test func toupperTakesAndReturnsI32() throws {
        let toupper = try Self.native("toupper", "i32(i32)")
        #expect(try call(toupper, "[97]").get() == "65")
        #expect(try call(toupper, "[49]").get() == "49")
    }

    @Test func negativeI32ReturnKeepsItsSign() throws {
        let atoi = try Self.native("atoi", "i32(str)")
        #expect(try call(atoi, #"["-42"]"#).get() == "-42")
        #expect(try call(atoi, #"["-2147483648"]"#).get() == "-2147483648")
    }

    @Test func fabsfTakesAndReturnsF32() throws {
        let fabsf = try Self.native("fabsf", "f32(f32)", library: "libm.so.6")
        #expect(try call(fabsf, "[-1.5]").get() == "1.5")
        #expect(try #require(typeError(fabsf, "[1e300]")).contains("argument 1 (f32) out of range"))
    }

    @Test func stringReturnIsCopiedAndNullBecomesNull() throws {
        let getenv = try Self.native("getenv", "str(str)")
        let pointer = Glibc.getenv("PATH")
        let path = String(cString: try #require(pointer))
        #expect(try call(getenv, #"["PATH"]"#).get() == JSONWriter.string(.string(path)))
        #expect(try call(getenv, #"["FNHOST_TEST_SURELY_UNSET_VARIABLE"]"#).get() == "null")
    }

    /// The TypeError for `args` on `function`, or nil when the call did not fail with one.
    func typeError(_ function: NativeFunction, _ args: String, kwargs: String = "{}") -> String? {
        guard case .failure(let e) = call(function, args, kwargs: kwargs), e.type == "TypeError", e.module == "builtins" else { return nil }
        return e.message
    }

    @Test func wrongJSONTypeIsATypeErrorNamingTheArgument() throws {
        let abs = try Self.native("abs", "i32(i32)")
        let message = try #require(typeError(abs, #"["5"]"#))
        #expect(message.contains("abs()"))
        #expect(message.contains("argument 1 (i32)"))
        #expect(message.contains("string"))
        let strlen = try Self.native("strlen", "u64(str)")
        #expect(try #require(typeError(strlen, "[5]")).contains("argument 1 (str) must be a string"))
        let hypot = try Self.native("hypot", "f64(f64,f64)", library: "libm.so.6")
        #expect(try #require(typeError(hypot, #"[1, "2"]"#)).contains("argument 2 (f64) must be a number"))
        #expect(try #require(typeError(hypot, "[1, null]")).contains("argument 2"))
    }

    @Test func boolIsNotAnInteger() throws {
        let abs = try Self.native("abs", "i32(i32)")
        let message = try #require(typeError(abs, "[true]"))
        #expect(message.contains("argument 1 (i32) must be an integer, got boolean"))
    }

    @Test func floatIsNotAnInteger() throws {
        let abs = try Self.native("abs", "i32(i32)")
        #expect(try #require(typeError(abs, "[1.5]")).contains("argument 1"))
    }

    @Test func outOfRangeIntegersAreTypeErrors() throws {
        let abs = try Self.native("abs", "i32(i32)")
        #expect(try #require(typeError(abs, "[2147483648]")).contains("argument 1 (i32) out of range: 2147483648"))
        #expect(try #require(typeError(abs, "[-2147483649]")).contains("out of range"))
        // The same C function declared with unsigned arguments: refused before any call.
        let u32 = try NativeFunction(name: "abs", symbol: try Self.symbol("abs"), signature: try NativeSignature(parsing: "i32(u32)"))
        #expect(try #require(typeError(u32, "[-1]")).contains("argument 1 (u32) out of range: -1"))
        #expect(try #require(typeError(u32, "[4294967296]")).contains("out of range"))
        let u64 = try NativeFunction(name: "labs", symbol: try Self.symbol("labs"), signature: try NativeSignature(parsing: "i64(u64)"))
        #expect(try #require(typeError(u64, "[-1]")).contains("argument 1 (u64) out of range: -1"))
        let i64 = try Self.native("labs", "i64(i64)")
        #expect(try #require(typeError(i64, "[9223372036854775808]")).contains("argument 1 (i64) out of range"))
    }

    @Test func wrongArgumentCountIsATypeError() throws {
        let hypot = try Self.native("hypot", "f64(f64,f64)", library: "libm.so.6")
        #expect(try #require(typeError(hypot, "[1]")).contains("takes 2 positional arguments"))
        #expect(try #require(typeError(hypot, "[1, 2, 3]")).contains("but 3 were given"))
        #expect(try #require(typeError(hypot, "[]")).contains("but 0 were given"))
    }

    @Test func keywordArgumentsAreATypeError() throws {
        let abs = try Self.native("abs", "i32(i32)")
        let message = try #require(typeError(abs, "[1]", kwargs: #"{"x": 1}"#))
        #expect(message.contains("keyword arguments: x"))
    }

    @Test func nulInAStringIsATypeError() throws {
        let strlen = try Self.native("strlen", "u64(str)")
        #expect(try #require(typeError(strlen, #"["a\u0000b"]"#)).contains("argument 1 (str) contains a NUL character"))
    }

    @Test func argsThatAreNotAnArrayAreATypeError() throws {
        let abs = try Self.native("abs", "i32(i32)")
        #expect(try #require(typeError(abs, #"{"a": 1}"#)).contains("args must be a JSON array"))
        #expect(typeError(abs, "[1") != nil)
    }
}
