import FnHostPlugins
import Testing

@Suite struct NativeSignatureTests {
    static let valid: [(text: String, ret: NativeSignature.CType, args: [NativeSignature.CType])] = [
        ("i64(i64,i64)", .i64, [.i64, .i64]),
        ("void()", .void, []),
        ("str(str)", .str, [.str]),
        (" i64 ( i64 , i64 )", .i64, [.i64, .i64]),
        ("f64(f64, f64)", .f64, [.f64, .f64]),
        ("bool(i32,u32,u64,f32,bool,str)", .bool, [.i32, .u32, .u64, .f32, .bool, .str]),
        ("void( )", .void, []),
    ]

    @Test(arguments: valid)
    func validSignatureParses(text: String, ret: NativeSignature.CType, args: [NativeSignature.CType]) throws {
        let signature = try NativeSignature(parsing: text)
        #expect(signature.returnType == ret)
        #expect(signature.argumentTypes == args)
        // The canonical spelling parses back to the same signature.
        #expect(try NativeSignature(parsing: signature.description) == signature)
    }

    @Test func canonicalSpellingHasNoSpaces() throws {
        #expect(try NativeSignature(parsing: " i64 ( i64 , i64 )").description == "i64(i64,i64)")
    }

    func error(_ text: String) -> String? {
        do {
            _ = try NativeSignature(parsing: text)
            return nil
        } catch {
            return String(describing: error)
        }
    }

    @Test func unknownArgumentTypeNamesTheTypeAndPosition() throws {
        let message = try #require(error("i64(i64,int)"))
        #expect(message.contains("\"int\""))
        #expect(message.contains("argument 2"))
        let first = try #require(error("i64(long, i64)"))
        #expect(first.contains("\"long\""))
        #expect(first.contains("argument 1"))
    }

    @Test func emptyArgumentBetweenCommasIsAnError() throws {
        let message = try #require(error("i64(i64,,i64)"))
        #expect(message.contains("argument 2"))
    }

    @Test func unknownReturnTypeNamesTheType() throws {
        let message = try #require(error("double(f64)"))
        #expect(message.contains("\"double\""))
        #expect(message.contains("return type"))
    }

    @Test(arguments: ["void(void)", "i32(i32, void)"])
    func voidArgumentIsRefused(text: String) throws {
        let message = try #require(error(text))
        #expect(message.contains("void is not an argument type"))
    }

    @Test(arguments: ["i64", "i64 i64", "i64(i64", "i64 i64)", "", "()"])
    func missingParenthesesAreRefused(text: String) {
        #expect(error(text) != nil)
    }

    @Test func moreThan32ArgumentsAreRefused() {
        let args = Array(repeating: "i32", count: 33).joined(separator: ",")
        #expect(error("void(\(args))")?.contains("32") == true)
        #expect(error("void(\(Array(repeating: "i32", count: 32).joined(separator: ",")))") == nil)
    }
}
